import ElasticsearchClient
import Foundation
import JSONSupport
import Logging
import OrderSearchAPI
import RequestParsing
import Testing
import TokenSigning

/// The search API's OpenAPI document and its code cannot drift apart: routes
/// both ways, and the query parameters are exactly those the parser knows.
@Suite struct SearchOpenAPIConformanceTests {
    static let document = try! JSONParser.parse(searchAPIDocument)

    @Test func everyRouteIsDocumentedAndEveryDocumentedRouteExists() async throws {
        let client = ElasticsearchClient(configuration: .init(baseURL: "http://127.0.0.1:1"))
        let router = buildSearchRouter(client: client, alias: "orders", auth: .disabled, signer: try TokenSigner(key: String(repeating: "k", count: 32)),
                                       logger: Logger(label: "unused"))
        let code = Set(router.routes.map { "\($0.method.rawValue) \($0.path)".replacingOccurrences(of: ":id", with: "{id}") })
        var documented: Set<String> = []
        for (path, item) in Self.document["paths"]?.objectValue?.pairs ?? [] {
            for (method, _) in item.objectValue?.pairs ?? [] { documented.insert("\(method.uppercased()) \(path)") }
        }
        #expect(code.subtracting(documented).isEmpty, "routes missing from openapi.json: \(code.subtracting(documented).sorted())")
        #expect(documented.subtracting(code).isEmpty, "documented but not routed: \(documented.subtracting(code).sorted())")
        await client.shutdown()
    }

    @Test func queryParametersAreExactlyThoseTheParserKnows() throws {
        let parameters = try #require(Self.document["paths"]?["/search/orders"]?["get"]?["parameters"]?.arrayValue)
        let query = parameters.filter { $0["in"]?.stringValue == "query" }
        let documented = Set(query.compactMap { $0["name"]?.stringValue })
        #expect(documented == SearchParameters.multiValued.union(SearchParameters.singleValued))
        // Repeatable filters are documented as arrays of at most the parser's limit.
        for parameter in query where SearchParameters.multiValued.contains(parameter["name"]?.stringValue ?? "") {
            #expect(parameter["schema"]?["type"]?.stringValue == "array")
            #expect(parameter["schema"]?["maxItems"]?.intValue == SearchParameters.maximumFilterValues)
        }
        let q = query.first { $0["name"]?.stringValue == "q" }
        #expect(q?["schema"]?["maxLength"]?.intValue == SearchParameters.maximumQueryLength)
    }
}
