import ElasticsearchClient
import JSONSupport

/// The calls the search API makes to the search cluster. The production
/// conformer is `ElasticsearchClient`; the unit tests use a stub that records
/// the request bodies and answers canned results, with no server.
public protocol SearchBackend: Sendable {
    func search(_ index: String, body: [UInt8], timeout: Duration?) async throws(ElasticsearchError) -> JSONValue
    func count(_ index: String, query: JSONValue?) async throws(ElasticsearchError) -> Int
    func get(_ index: String, id: String) async throws(ElasticsearchError) -> (source: JSONValue, version: Int64)?
    func probe(_ index: String) async -> ElasticsearchClient.ReadProbe
}

extension ElasticsearchClient: SearchBackend {}
