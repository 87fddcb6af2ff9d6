import ElasticsearchClient
import Foundation
import JSONSupport
import Logging
import OrderDomain
import OrderSearchAPI
import RequestParsing
import Security
import ServiceSupport
import Synchronization
import Testing
import TokenSigning

/// The search API through its real application factory (`buildSearchApplication`)
/// against a stub backend: parameters, scoping, query bodies, cursors, rendering
/// and error mapping, with no Elasticsearch.
@Suite struct SearchRouterTests {
    /// Records every request body and answers the canned result (or throws the canned error).
    final class StubBackend: SearchBackend {
        private let state = Mutex<(bodies: [JSONValue], counts: [JSONValue], answer: JSONValue, error: ElasticsearchError?)>(
            ([], [], .null, nil))

        init(answer: JSONValue) { state.withLock { $0.answer = answer } }

        var bodies: [JSONValue] { state.withLock { $0.bodies } }
        var countQueries: [JSONValue] { state.withLock { $0.counts } }
        func fail(with error: ElasticsearchError) { state.withLock { $0.error = error } }

        func search(_ index: String, body: [UInt8], timeout: Duration?) async throws(ElasticsearchError) -> JSONValue {
            let (answer, error) = state.withLock { state in
                state.bodies.append((try? JSONParser.parse(body)) ?? .null)
                return (state.answer, state.error)
            }
            if let error { throw error }
            return answer
        }

        func count(_ index: String, query: JSONValue?) async throws(ElasticsearchError) -> Int {
            state.withLock { $0.counts.append(query ?? .null) }
            return 1
        }

        func get(_ index: String, id: String) async throws(ElasticsearchError) -> (source: JSONValue, version: Int64)? {
            id == "ord_1" ? (SearchRouterTests.source(id: "ord_1", customer: "cus_a"), 1) : nil
        }

        func probe(_ index: String) async -> ElasticsearchClient.ReadProbe { .readable }
    }

    static let secret = String(repeating: "r", count: 40)
    static let signer = try! TokenSigner(key: String(repeating: "s", count: 40))

    static func source(id: String, customer: String) -> JSONValue {
        ["order_id": .string(id), "version": 2, "status": "paid", "customer": ["id": .string(customer), "version": 1, "name": "Alice <b>",
         "email": "a@example.com", "country": "DE"], "currency": "EUR", "total": "59.97", "item_count": 1,
         "items": [["sku": "MUG-1", "name": "Blue Mug", "quantity": 3, "unit_price": "19.99"]],
         "shipping_country": "DE", "shipping_city": "Berlin", "created_at": "2026-11-01T10:00:00.000Z", "updated_at": "2026-11-02T10:00:00.000Z"]
    }

    /// One page of `hits` hits (size + 1 signals another page), with facets.
    static func answer(hits: Int) -> JSONValue {
        let list: [JSONValue] = (0..<hits).map { i in
            ["_source": source(id: "ord_\(i)", customer: "cus_a"), "sort": [.number("\(1_790_000_000_000 - i)"), .string("ord_\(i)")],
             "highlight": ["customer.name": ["&lt;b&gt; <mark>Alice</mark> A&#x2F;B &amp;#x2F;"]]]
        }
        return ["hits": ["total": ["value": .int(hits), "relation": "eq"], "hits": .array(list)],
                "aggregations": [
                    "status": ["values": ["buckets": [["key": "paid", "doc_count": 3], ["key": "pending", "doc_count": 0]]]],
                    "country": ["values": ["buckets": [["key": "DE", "doc_count": 3]]]],
                    "currency": ["values": ["buckets": [["key": "EUR", "doc_count": 3]]]],
                    "total_range": ["values": ["buckets": [["key": "1000-", "doc_count": 1], ["key": "0-50", "doc_count": 2],
                                                         ["key": "50-100", "doc_count": 0]]]],
                    "created_month": ["values": ["buckets": [["key": "2026-10", "doc_count": 1], ["key": "2026-11", "doc_count": 2]]]],
                ]]
    }

    struct Running {
        let backend: StubBackend
        let task: Task<Void, any Error>
        let base: String
        /// Shared: every client keeps its threads until it is shut down.
        static let sharedClient = CurlHTTPClient()
        var http: CurlHTTPClient { Self.sharedClient }

        func get(_ path: String, roles: [Role] = [.staff], customerID: String? = nil, headers: [(String, String)] = [])
            async throws -> (status: Int, json: JSONValue, headers: [(String, String)])
        {
            let token = try await AccessTokenMinter(secret: SearchRouterTests.secret).mint(subject: "t", roles: roles, customerID: customerID)
            let response = try await http.execute(method: "GET", url: base + path, headers: headers + [("Authorization", "Bearer \(token)")])
            return (response.status, (try? JSONParser.parse(response.body)) ?? .null, response.headers)
        }
    }

    static func start(answer: JSONValue = answer(hits: 3)) async throws -> Running {
        let backend = StubBackend(answer: answer)
        let auth = try await AuthConfiguration(jwtSecret: secret).mode()
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        let app = buildSearchApplication(client: backend, alias: "orders", auth: auth, signer: signer,
                                         address: HostAndPort(host: "127.0.0.1", port: 0), logger: Logger(label: "test"),
                                         onServerRunning: { continuation.yield($0) })
        let task = Task { try await app.run() }
        var iterator = stream.makeAsyncIterator()
        guard let port = await iterator.next() else { throw CancellationError() }
        return Running(backend: backend, task: task, base: "http://127.0.0.1:\(port)")
    }

    /// A customer waits only for its own writes: another customer's token costs no look at the index.
    @Test func aCustomerWaitsOnlyForItsOwnWrites() async throws {
        let api = try await Self.start()
        defer { api.task.cancel() }
        func token(of customer: String) -> String {
            Self.signer.sign(ConsistencyToken(aggregateType: .order, aggregateID: "ord_1", version: 2, customerID: customer).payload,
                             for: .consistency)
        }
        let foreign = try await api.get("/search/orders", roles: [.customer], customerID: "cus_a",
                                        headers: [("Consistency-Token", token(of: "cus_b")), ("Consistency-Wait", "10000")])
        #expect(foreign.status == 200)
        #expect(foreign.headers.first { $0.0.lowercased() == "read-model-caught-up" }?.1 == "false")
        #expect(api.backend.countQueries.isEmpty)
        let own = try await api.get("/search/orders", roles: [.customer], customerID: "cus_a",
                                    headers: [("Consistency-Token", token(of: "cus_a"))])
        #expect(own.headers.first { $0.0.lowercased() == "read-model-caught-up" }?.1 == "true")
        #expect(api.backend.countQueries.count == 1)
    }

    @Test func badParametersAre400WithoutABackendCall() async throws {
        let api = try await Self.start()
        defer { api.task.cancel() }
        for (query, parameter) in [("size=0", "size"), ("sort=price", "sort"), ("status=lost", "status"), ("total_min=abc", "total_min"),
                                   ("q=\(String(repeating: "a", count: 513))", "q"), ("nope=1", "nope"), ("cursor=x", "cursor")] {
            let reply = try await api.get("/search/orders?\(query)")
            #expect(reply.status == 400, "\(query)")
            #expect(reply.json["errors"]?[0]?["field"]?.stringValue == parameter, "\(query)")
        }
        #expect(api.backend.bodies.isEmpty)
    }

    @Test func rendersTheContractsShape() async throws {
        let api = try await Self.start()
        defer { api.task.cancel() }
        let reply = try await api.get("/search/orders?q=alice&size=2")
        #expect(reply.status == 200)
        let hit = try #require(reply.json["hits"]?[0])
        #expect(reply.json["hits"]?.arrayValue?.count == 2)  // the extra hit only signals another page
        #expect(hit["id"]?.stringValue == "ord_0" && hit["customer"]?["name"]?.stringValue == "Alice <b>")
        #expect(hit["total"]?.stringValue == "59.97" && hit["items"]?[0]?["unit_price"]?.stringValue == "19.99")
        #expect(hit["highlight"]?["customer.name"]?[0]?.stringValue == "&lt;b&gt; <mark>Alice</mark> A/B &amp;#x2F;")  // the encoder's / unescaped
        let facets = try #require(reply.json["facets"])
        #expect(facets["status"]?.arrayValue?.count == 1)  // zero counts left out
        #expect(facets["total_range"]?.arrayValue?.compactMap { $0["value"]?.stringValue } == ["0-50", "1000-"])  // fixed order
        #expect(facets["total_range"]?[1]?["to"] == .null)
        #expect(facets["created_month"]?.arrayValue?.compactMap { $0["value"]?.stringValue } == ["2026-10", "2026-11"])
        #expect(reply.json["next_cursor"]?.stringValue != nil)
    }

    @Test func theQueryBodyKeepsUserTextOutOfQuerySyntaxAndAsksForEscapedHighlights() async throws {
        let api = try await Self.start()
        defer { api.task.cancel() }
        let text = #"a" OR * AND {"script": 1}"#
        _ = try await api.get("/search/orders?q=\(text.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)&status=paid")
        let body = try #require(api.backend.bodies.first)
        #expect(body["highlight"]?["encoder"]?.stringValue == "html")
        #expect(body["highlight"]?["pre_tags"]?[0]?.stringValue == "<mark>")
        let should = body["query"]?["bool"]?["must"]?[0]?["bool"]?["should"]?.arrayValue ?? []
        #expect(should.first?["multi_match"]?["query"]?.stringValue == text)
        #expect(!body.serialized.contains("query_string"))
        #expect(body["post_filter"]?["bool"]?["filter"]?[0]?["terms"]?["status"] == ["paid"])
    }

    /// A pasted paragraph cannot push the query past Elasticsearch 8's clause limit: the typo-tolerant
    /// clauses get its first 8 words (a word as the standard tokenizer could split it, never fewer
    /// tokens) and at most 8 spellings per word; the exact-id clauses keep the whole text.
    @Test func theTextClausesAreBoundedWhateverTheQuery() async throws {
        let api = try await Self.start()
        defer { api.task.cancel() }
        let paragraph = (1...60).map { "word\($0)" }.joined(separator: " ")
        let hyphenated = (1...100).map { "a\($0)" }.joined(separator: "-")
        for (q, matched) in [(paragraph, "word1 word2 word3 word4 word5 word6 word7 word8 "), (hyphenated, "a1-a2-a3-a4-a5-a6-a7-a8-"),
                             (String(repeating: "李雷", count: 50), "李雷李雷李雷李雷"), (String(repeating: "😀", count: 100), String(repeating: "😀", count: 8)),
                             (String(repeating: "アab", count: 50), "アabアabアabアab"), (String(repeating: "⼀", count: 50), String(repeating: "⼀", count: 8)),
                             ("Müller Иванов Ελένη 김민준", "Müller Иванов Ελένη 김민준"), ("Alice Smith", "Alice Smith"), ("ord_1234", "ord_1234")] {
            _ = try await api.get("/search/orders?q=\(q.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)")
            let should = api.backend.bodies.last?["query"]?["bool"]?["must"]?[0]?["bool"]?["should"]?.arrayValue ?? []
            let textClauses = should.compactMap { $0["multi_match"] }
            #expect(textClauses.count == 2)
            #expect(textClauses.allSatisfy { $0["query"]?.stringValue == matched && $0["max_expansions"]?.intValue == 8 }, "\(q.prefix(20))")
            #expect(should.contains { $0["term"]?["order_id"]?["value"]?.stringValue == q })
        }
    }

    @Test func aCustomersScopeIsInsideTheQuerySoFacetsObeyIt() async throws {
        let api = try await Self.start()
        defer { api.task.cancel() }
        #expect(try await api.get("/search/orders", roles: [.customer], customerID: "cus_a").status == 200)
        let body = try #require(api.backend.bodies.first)
        let filters = body["query"]?["bool"]?["filter"]?.arrayValue ?? []
        #expect(filters.contains(["term": ["customer.id": "cus_a"]]))
        #expect(try await api.get("/search/orders?customer_id=cus_b", roles: [.customer], customerID: "cus_a").status == 403)
        #expect(try await api.get("/search/orders/ord_1", roles: [.customer], customerID: "cus_b").status == 404)
        #expect(try await api.get("/search/orders/ord_1", roles: [.customer], customerID: "cus_a").status == 200)
        #expect(try await api.get("/search/orders", roles: [.payments]).status == 403)
        #expect(api.backend.bodies.count == 1)
    }

    @Test func aCursorContinuesExactlyWhereThePageEnded() async throws {
        let api = try await Self.start()
        defer { api.task.cancel() }
        let first = try await api.get("/search/orders?size=2&sort=-created_at")
        let cursor = try #require(first.json["next_cursor"]?.stringValue)
        let next = try await api.get("/search/orders?size=2&sort=-created_at&cursor=\(cursor)")
        #expect(next.status == 200)
        #expect(api.backend.bodies.last?["search_after"] == [.number("1789999999999"), "ord_1"])
        // The same cursor with another query, or signed with another key, never reaches the backend.
        let calls = api.backend.bodies.count
        #expect(try await api.get("/search/orders?size=3&sort=-created_at&cursor=\(cursor)").status == 400)
        let foreign = Cursor(query: "sort=-created_at&size=2&facet_size=10", scope: "", searchAfter: [.number("1"), "ord_1"])
            .encoded(with: try TokenSigner(key: String(repeating: "o", count: 40)))
        #expect(try await api.get("/search/orders?size=2&sort=-created_at&cursor=\(foreign)").status == 400)
        #expect(try await api.get("/search/orders?cursor=\(cursor)", roles: [.customer], customerID: "cus_a").status == 400)  // another scope
        #expect(api.backend.bodies.count == calls)
    }

    /// A cursor carries its query, so a long query makes a long cursor: one of a 500-character CJK `q`
    /// (over 4 KiB) still continues its query.
    @Test func aLongQuerysCursorStillWorks() async throws {
        let api = try await Self.start()
        defer { api.task.cancel() }
        let q = String(repeating: "李", count: 500).addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let first = try await api.get("/search/orders?q=\(q)&sort=-created_at&size=2")
        let cursor = try #require(first.json["next_cursor"]?.stringValue)
        #expect(cursor.utf8.count > 4096)
        #expect(try await api.get("/search/orders?cursor=\(cursor)").status == 200)
        #expect(api.backend.bodies.last?["search_after"] != nil)
    }

    /// The cursor carries its query: sent alone it asks the backend exactly what the resent parameters do.
    @Test func aCursorAloneContinuesItsOwnQuery() async throws {
        let api = try await Self.start()
        defer { api.task.cancel() }
        let first = try await api.get("/search/orders?q=alice&status=paid,shipped&size=2&facet_size=3&sort=-created_at")
        let cursor = try #require(first.json["next_cursor"]?.stringValue)
        #expect(try await api.get("/search/orders?status=shipped,paid&sort=-created_at&size=2&facet_size=3&q=alice&cursor=\(cursor)").status == 200)
        let resent = try #require(api.backend.bodies.last)
        #expect(try await api.get("/search/orders?cursor=\(cursor)").status == 200)
        #expect(api.backend.bodies.last == resent)
        #expect(resent["search_after"] != nil && resent["size"]?.intValue == 3)  // one more than the page, to know if another follows
    }

    @Test(arguments: [
        (ElasticsearchError(code: .timeout, status: nil, errorType: nil), 504),
        (ElasticsearchError(code: .unavailable, status: nil, errorType: nil), 503),
        (ElasticsearchError(code: .http, status: 429, errorType: nil), 503),
        (ElasticsearchError(code: .http, status: 400, errorType: "search_phase_execution_exception"), 502),
        (ElasticsearchError(code: .malformedResponse, status: 200, errorType: nil), 502),
    ])
    func backendFailuresBecomeProblemsThatShowNoRequest(error: ElasticsearchError, status: Int) async throws {
        let api = try await Self.start()
        defer { api.task.cancel() }
        api.backend.fail(with: error)
        let reply = try await api.get("/search/orders?q=secret-term")
        #expect(reply.status == status)
        #expect(reply.headers.contains { $0.0 == "content-type" && $0.1 == "application/problem+json" })
        #expect(!reply.json.serialized.contains("secret-term") && !reply.json.serialized.contains("search_phase"))
        if status == 503 { #expect(reply.headers.contains { $0.0 == "retry-after" }) }
    }
}
