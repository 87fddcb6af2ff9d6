import ElasticsearchClient
import ServiceSupport

extension SearchHandlers {
    /// Elasticsearch failures become 502/503/504 problems that never show the request.
    func mapErrors<T>(_ body: () async throws(ElasticsearchError) -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            logger.warning("elasticsearch request failed", metadata: ["es.error": "\(error)"])
            switch error.code {
            case .timeout: throw Problem(.gatewayTimeout, detail: "the search cluster did not answer in time")
            case .unavailable: throw Problem.unavailable("the search cluster")
            case .http where error.status == 404: throw Problem.unavailable("the order index")
            case .http where error.status == 429 || error.status == 503: throw Problem.unavailable("the search cluster")
            case .http, .malformedResponse: throw Problem(.badGateway, detail: "the search cluster could not answer this query")
            }
        }
    }
}
