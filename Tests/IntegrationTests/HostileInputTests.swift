import ElasticsearchClient
import FaultProxy
import Foundation
import JSONSupport
import OrderDomain
import OrderSearchAPI
import LibPQClient
import ServiceSupport
import Testing
import ServiceTesting
import TokenSigning

#if canImport(Glibc)
import Glibc
#endif

/// The attacks of issue "hostile input", against the real services: each one's
/// work is asserted bounded by what it costs (bytes, Elasticsearch calls), not by time.
@Suite struct HostileInputTests {
    /// The shared search fixture's index, served by a search API whose Elasticsearch
    /// calls go through a fault proxy that counts them.
    struct CountedSearch {
        let http: TestHTTP
        let proxy: FaultProxy
        let task: Task<Void, any Error>
        let client: ElasticsearchClient

        /// Runs `body` against a fresh counted search API, stopped afterwards.
        static func with(consistency: ConsistencyWaitPolicy = .init(), _ body: (CountedSearch) async throws -> Void) async throws {
            try await withScoped({ try await start(consistency: consistency) }, stop: { await $0.stop() }, body)
        }

        static func start(consistency: ConsistencyWaitPolicy = .init()) async throws -> CountedSearch {
            let fixture = try await SearchFixture.shared.value
            let proxy = FaultProxy(upstream: try TestEnvironment.elasticsearchURL, logger: TestEnvironment.logger)
            let proxyPort = try await proxy.start()
            let client = ElasticsearchClient(configuration: .init(baseURL: "http://127.0.0.1:\(proxyPort)"))
            let (port, task) = try await startSearchAPI(client: client, alias: fixture.indexer.alias, consistency: consistency)
            let http = TestHTTP(base: "http://127.0.0.1:\(port)", bearer: try await TestEnvironment.token([.staff]))
            return CountedSearch(http: http, proxy: proxy, task: task, client: client)
        }

        func stop() async {
            task.cancel()
            await client.shutdown()
            await proxy.stop()
        }
    }

    @Test func hugeOrderBodyIsOneSmallAnswerAndWritesNothing() async throws {
        try await WriteAPIHarness.with() { api in
            let customer = try await api.createCustomer()
            let items = Array(repeating: "{}", count: 349_000).joined(separator: ",")
            let body = #"{"customer_id":"\#(customer)","currency":"EUR","items":[\#(items)],"shipping_address":{"line1":"a","city":"b","postal_code":"1","country":"DE"}}"#
            #expect(body.utf8.count <= 1 << 20)
            let reply = try await api.client.post("/orders", body)
            #expect(expectProblem(reply, 422) == ["items"])
            #expect(reply.body.count < 64 * 1024)
            // Many bad items and thousands of unknown fields: at most 100 errors listed.
            let item = #"{"sku":"-","name":"","quantity":0,"unit_price":"0","extra":1}"#
            let unknown = (0..<20_000).map { #""k\#($0)":1"# }.joined(separator: ",")
            let noisy = #"{\#(unknown),"customer_id":"\#(customer)","items":[\#(Array(repeating: item, count: 100).joined(separator: ","))]}"#
            let noisyReply = try await api.client.post("/orders", noisy)
            #expect(expectProblem(noisyReply, 422).count == 100)
            #expect(noisyReply.body.count < 64 * 1024)
            #expect(try await api.database.count("SELECT count(*) FROM orders") == 0)
            #expect(try await api.database.count("SELECT count(*) FROM outbox WHERE aggregate_type = 'order'") == 0)
        }
    }

    @Test func twentyThousandFilterValuesAreRefusedWithoutElasticsearch() async throws {
        try await CountedSearch.with() { search in
            // 20k distinct values in a 77 KB URL (under the 80 KB request-head limit).
            let many = (0..<20_000).map { String($0, radix: 36) }.joined(separator: ",")
            #expect(many.utf8.count < 78 * 1024)
            let reply = try await search.http.get("/search/orders?customer_id=\(many)")
            #expect(expectProblem(reply, 400) == ["customer_id"])
            #expect(search.proxy.requestCount == 0)
        }
    }

    @Test func forgedAlteredAndForeignTokensAndCursorsCostNoElasticsearchCall() async throws {
        try await CountedSearch.with() { search in
            let fixture = try await SearchFixture.shared.value
            let cursor = try #require(try await fixture.search.get("/search/orders?size=3").json["next_cursor"]?.stringValue)
            let signer = try TestEnvironment.signer
            let token = ConsistencyToken(aggregateType: .order, aggregateID: "ord_seed_001", version: 999, customerID: "cus_seed_b")
            let genuine = signer.sign(token.payload, for: .consistency)
            let other = try TokenSigner(key: String(repeating: "x", count: 40)).sign(token.payload, for: .consistency)
            let unsigned = Base64URL.encode(Array("v1|o|ord_seed_001|999".utf8))
            var altered = Array(genuine)
            altered[3] = altered[3] == "A" ? "B" : "A"
            let before = search.proxy.requestCount
            for forged in [unsigned, other, String(altered), genuine + "x", cursor] {
                let reply = try await search.http.get("/search/orders", headers: [("Consistency-Token", forged), ("Consistency-Wait", "10000")])
                #expect(expectProblem(reply, 400) == ["Consistency-Token"])
            }
            var alteredCursor = Array(cursor)
            alteredCursor[5] = alteredCursor[5] == "A" ? "B" : "A"
            for forged in [String(alteredCursor), genuine, Base64URL.encode(Array(#"{"f":"x","s":[1,"a"]}"#.utf8))] {
                #expect(expectProblem(try await search.http.get("/search/orders?size=3&cursor=\(forged)"), 400) == ["cursor"])
            }
            #expect(search.proxy.requestCount == before)
        }
    }

    /// A genuine token for a version that never comes: polls back off, so a wait costs a bounded number of calls.
    @Test func readYourWritesPollsBackOff() async throws {
        let policy = ConsistencyWaitPolicy()
        try await CountedSearch.with(consistency: policy) { search in
            let token = ConsistencyToken(aggregateType: .order, aggregateID: "ord_seed_001", version: 999, customerID: "cus_seed_b")
            let header = try TestEnvironment.signer.sign(token.payload, for: .consistency)
            let before = search.proxy.requestCount
            let reply = try await search.http.get("/search/orders?size=1", headers: [("Consistency-Token", header), ("Consistency-Wait", "3000")])
            #expect(reply.status == 200)
            #expect(reply.header("read-model-caught-up") == "false")
            let calls = search.proxy.requestCount - before
            // One _count per poll (first check + one per pause) and the search itself.
            #expect(calls <= policy.pauses(within: .milliseconds(3000)).count + 2)
            #expect(calls >= 3)
            #expect(policy.pauses(within: .seconds(10)).count + 1 <= 32)
        }
    }

    @Test func tooManyWaitersGet503WithRetryAfter() async throws {
        var policy = ConsistencyWaitPolicy()
        policy.maxWaiters = 1
        try await CountedSearch.with(consistency: policy) { search in
            let token = ConsistencyToken(aggregateType: .order, aggregateID: "ord_seed_001", version: 999, customerID: "cus_seed_b")
            let header = try TestEnvironment.signer.sign(token.payload, for: .consistency)
            let waiting = Task { try await search.http.get("/search/orders?size=1", headers: [("Consistency-Token", header), ("Consistency-Wait", "4000")]) }
            // Wait until the first request is polling (its first _count has gone out).
            #expect(await eventually(timeout: .seconds(5), every: .milliseconds(20)) { search.proxy.requestCount >= 2 })
            let refused = try await search.http.get("/search/orders?size=1", headers: [("Consistency-Token", header), ("Consistency-Wait", "4000")])
            expectProblem(refused, 503)
            #expect(refused.header("retry-after") == "1")
            #expect(try await waiting.value.status == 200)
        }
    }

    @Test func highlightsAreEscapedHTMLWithOnlyMarkTags() async throws {
        try await IndexerHarness.withIndexerAndSearch { h, searchURL in
            let customer = try await h.api.createCustomer(name: "<img src=x onerror=alert(1)> Zqxwv & \"Co\"")
            _ = try await h.api.placeOrders(1, customerID: customer)
            #expect(await eventually { (try? await h.elasticsearch.count(h.alias)) == 1 })
            let search = TestHTTP(base: searchURL, bearer: try await TestEnvironment.token([.staff]))
            let reply = try await search.get("/search/orders?q=Zqxwv")
            let fragment = try #require(reply.json["hits"]?[0]?["highlight"]?["customer.name"]?[0]?.stringValue)
            #expect(fragment.contains("&lt;img src=x onerror=alert(1)&gt;"))
            #expect(fragment.contains("<mark>Zqxwv</mark>"))
            #expect(fragment.contains("&amp;"))
            #expect(!fragment.contains("<img"))
            // The document itself keeps the raw text (it is JSON, not HTML).
            #expect(reply.json["hits"]?[0]?["customer"]?["name"]?.stringValue == "<img src=x onerror=alert(1)> Zqxwv & \"Co\"")
        }
    }

    @Test func pathIdsAreValidatedBeforeElasticsearch() async throws {
        try await CountedSearch.with() { search in
            for id in ["..", "%2E%2E", "ord%2F..%2F_search", "a%20b", "%00", String(repeating: "a", count: 101), "ord_1%3Fpretty"] {
                expectProblem(try await search.http.get("/search/orders/\(id)"), 404)
            }
            #expect(search.proxy.requestCount == 0)
            #expect(try await search.http.get("/search/orders/ord_seed_001").status == 200)
        }
    }

    /// A client that sends half a request and then nothing is disconnected after the idle timeout.
    @Test func slowLorisIsDisconnected() async throws {
        var limits = HTTPServerLimits()
        limits.idleTimeout = .seconds(1)
        try await WriteAPIHarness.with(limits: limits) { api in
            let port = try #require(Int(api.client.base.split(separator: ":").last ?? ""))
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = LoopbackPort.address(port: port)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            #expect(connected == 0)
            let partial = Array("GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ".utf8)
            #expect(partial.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) } == partial.count)
            // Give up reading after 10 s: the server must close first (read returns 0 or an error).
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let started = ContinuousClock.now
            var buffer = [UInt8](repeating: 0, count: 512)
            let n = recv(fd, &buffer, buffer.count, 0)
            #expect(n <= 0 && errno != EAGAIN, "the server kept the idle connection open")
            #expect(ContinuousClock.now - started < .seconds(9))
        }
    }
}

/// A statement is prepared once per connection and prepared again once older than `replanAfter`:
/// the generic plan PostgreSQL made while the table was nearly empty (a scan of the whole table)
/// is not kept for longer than that as the table grows; a session that plans every execution
/// never keeps it.
@Suite struct SessionPlanningTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let replanAfter: Duration
        let planEveryExecution: Bool
        let usesIndex: Bool
        var testDescription: String { "replan after \(replanAfter), plan every execution: \(planEveryExecution)" }
    }

    @Test(arguments: [
        Case(replanAfter: .milliseconds(100), planEveryExecution: false, usesIndex: true),
        Case(replanAfter: .seconds(3600), planEveryExecution: false, usesIndex: false),
        Case(replanAfter: .seconds(3600), planEveryExecution: true, usesIndex: true),
    ])
    func aLookupPreparedOnATinyTableUsesItsIndexOnceReplanned(_ example: Case) async throws {
        try await TestDatabase.with(poolSize: 1) { database in
            let session = PostgresSessionSettings(replanAfter: example.replanAfter, planEveryExecution: example.planEveryExecution)
            try await withPool(.init(connectionString: database.url, size: 1, session: session)) { pool in
                let lookup = "SELECT pad FROM grows WHERE id = ANY($1::text[])"
                try await pool.withConnection { connection in
                    try connection.executeTrusted("CREATE TABLE grows (id text PRIMARY KEY, pad text) WITH (autovacuum_enabled = off); ANALYZE grows")
                    // PostgreSQL plans the first five executions and then keeps a generic plan.
                    for _ in 0..<8 { try connection.query(lookup, [PostgresTextArray(["k1"])]) }
                    try connection.executeTrusted("INSERT INTO grows SELECT 'k' || i, repeat('x', 200) FROM generate_series(1, 20000) AS i")
                }
                try await Task.sleep(for: .milliseconds(300))
                let (statements, plan) = try await pool.withConnection { connection in
                    for _ in 0..<8 { try connection.query(lookup, [PostgresTextArray(["k2"])]) }
                    let statements = try connection.query(
                        "SELECT name, generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1", [lookup])
                    let name = statements.first?.string("name") ?? "-"
                    let plan = try connection.query("EXPLAIN EXECUTE \(name)('{k7}')").map { $0.string(0) ?? "" }.joined(separator: "\n")
                    return (statements, plan)
                }
                #expect(statements.count == 1, "a statement prepared again replaces the one before")
                // Without a new preparation the generic plan made on the empty table stays: the long interval shows the problem.
                #expect(plan.contains("Index") == example.usesIndex, "\(plan)")
                #expect(plan.contains("Seq Scan") != example.usesIndex, "\(plan)")
            }
        }
    }
}

/// libpq and libcurl limits, without HTTP in between.
@Suite struct ClientLimitTests {
    @Test func statementTimeoutCancelsAndLockTimeoutIsATimeout() async throws {
        try await TestDatabase.with(poolSize: 2) { database in
            let session = PostgresSessionSettings(statementTimeout: .milliseconds(1000), lockTimeout: .milliseconds(100))
            try await withPool(.init(connectionString: database.url, size: 2, session: session)) { pool in
                await #expect(throws: LibPQError(code: .queryCanceled, sqlState: "57014")) { try await pool.query("SELECT pg_sleep(2)") }
                // One session holds a lock; the other gives up after lock_timeout.
                try await pool.withReservedConnection { holder in
                    try await holder.execute("BEGIN")
                    try await holder.query("SELECT pg_advisory_xact_lock(42)")
                    await #expect(throws: LibPQError(code: .timeout, sqlState: "55P03")) { try await pool.query("SELECT pg_advisory_lock(42)") }
                    try await holder.execute("ROLLBACK")
                }
            }
        }
    }

    @Test func poolRefusesWaitersBeyondItsBound() async throws {
        try await TestDatabase.with(poolSize: 1) { database in
            try await withPool(.init(connectionString: database.url, size: 1, acquireTimeout: .seconds(30), maxWaiters: 1)) { pool in
                try await pool.withReservedConnection { _ in
                    let waiter = Task { try await pool.query("SELECT 1") }
                    try await Task.sleep(for: .milliseconds(200))
                    let started = ContinuousClock.now
                    await #expect(throws: LibPQError(code: .timeout)) { try await pool.query("SELECT 1") }
                    #expect(ContinuousClock.now - started < .seconds(5))  // refused at once, not after the 30 s acquire timeout
                    waiter.cancel()
                    _ = waiter
                }
            }
        }
    }
}
