import ElasticsearchClient
import Foundation
import JSONSupport
import Testing

/// A small HTTP client for calling the services under test (over libcurl).
struct TestHTTP {
    let base: String
    /// Sent as `Authorization: Bearer …` unless a request sets its own `Authorization`.
    var bearer: String?
    /// One client for every test in the process: a client per caller would start four threads
    /// that live until exit (over a thousand in one run, past a CI container's thread limit).
    static let sharedClient: CurlHTTPClient = {
        var configuration = CurlHTTPClient.Configuration()
        configuration.threads = 16
        return CurlHTTPClient(configuration: configuration)
    }()
    var http: CurlHTTPClient { Self.sharedClient }

    init(base: String, bearer: String? = nil) {
        self.base = base
        self.bearer = bearer
    }

    /// The same server, called with another token (nil: none).
    func with(bearer: String?) -> TestHTTP { TestHTTP(base: base, bearer: bearer) }

    struct Reply {
        let status: Int
        let body: [UInt8]
        let headers: [(String, String)]
        var json: JSONValue { (try? JSONParser.parse(body)) ?? .null }
        var text: String { String(decoding: body, as: UTF8.self) }
        func header(_ name: String) -> String? { headers.first { $0.0 == name.lowercased() }?.1 }
    }

    func request(_ method: String, _ path: String, body: String? = nil, contentType: String? = "application/json",
                 headers: [(String, String)] = [], sourceLocation: SourceLocation = #_sourceLocation) async throws -> Reply {
        var all = headers
        if let bearer, !headers.contains(where: { $0.0.lowercased() == "authorization" }) { all.append(("Authorization", "Bearer \(bearer)")) }
        if body != nil, let contentType { all.append(("Content-Type", contentType)) }
        let response = try await http.execute(method: method, url: base + path, headers: all, body: body.map { Array($0.utf8) })
        ContractCheck.check(method: method, path: path, status: response.status, sourceLocation: sourceLocation)
        return Reply(status: response.status, body: response.body, headers: response.headers)
    }

    func get(_ path: String, headers: [(String, String)] = [], sourceLocation: SourceLocation = #_sourceLocation) async throws -> Reply {
        try await request("GET", path, headers: headers, sourceLocation: sourceLocation)
    }
    func post(_ path: String, _ body: String, headers: [(String, String)] = [], sourceLocation: SourceLocation = #_sourceLocation)
        async throws -> Reply
    {
        try await request("POST", path, body: body, headers: headers, sourceLocation: sourceLocation)
    }
    func patch(_ path: String, _ body: String, headers: [(String, String)] = [], sourceLocation: SourceLocation = #_sourceLocation)
        async throws -> Reply
    {
        try await request("PATCH", path, body: body, headers: headers, sourceLocation: sourceLocation)
    }
}

/// JSON text for a request body from a dictionary literal.
func json(_ value: JSONValue) -> String { value.serialized }

/// Asserts a problem+json response with the status, and returns its fields' names.
@discardableResult
func expectProblem(_ reply: TestHTTP.Reply, _ status: Int, sourceLocation: SourceLocation = #_sourceLocation) -> [String] {
    #expect(reply.status == status, "expected \(status), got \(reply.status): \(reply.text)", sourceLocation: sourceLocation)
    #expect(reply.header("content-type") == "application/problem+json", sourceLocation: sourceLocation)
    #expect(reply.json["status"]?.intValue == status, sourceLocation: sourceLocation)
    #expect(reply.json["title"]?.stringValue != nil, sourceLocation: sourceLocation)
    return (reply.json["errors"]?.arrayValue ?? []).compactMap { $0["field"]?.stringValue }
}
