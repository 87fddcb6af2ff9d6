import ElasticsearchClient
import FaultProxy
import JSONSupport
import OrderAdmin
import PostgresClient
import ReadModel
import Synchronization
import Testing

@Suite struct AdminTests {
    func reindexer(_ h: IndexerHarness, client: ElasticsearchClient? = nil, batchSize: Int = 50, keepOld: Bool = false) -> Reindexer {
        var options = Reindexer.Options()
        options.batchSize = batchSize
        options.keepOld = keepOld
        return Reindexer(pool: h.database.pool, client: client ?? h.elasticsearch, layout: IndexLayout(alias: h.alias), options: options,
                         logger: TestEnvironment.logger)
    }

    /// Reindex while writers and readers run: no failed search, never fewer of the
    /// pre-existing orders, exact counts afterwards, verify clean.
    @Test func reindexUnderLoadLosesNothing() async throws {
        let h = try await IndexerHarness.start()
        defer { Task { await h.stop() } }
        let indexer = try h.startIndexer()
        let customer = try await h.api.createCustomer()
        let existing = try await h.api.placeOrders(300, customerID: customer)
        #expect(await eventually(timeout: .seconds(60)) { await h.inSync() })
        let before = try await h.elasticsearch.aliasTargets(h.alias)

        let stop = Atomic<Bool>(false)
        let failures = Atomic<Int>(0)
        let shortfalls = Atomic<Int>(0)
        let existingQuery: JSONValue = ["terms": ["order_id": .array(existing.map { .string($0) })]]
        async let writers: Int = {
            var written = 0
            while !stop.load(ordering: .relaxed) {
                let reply = try await h.api.placeOrder(customerID: customer)
                if let id = reply.json["id"]?.stringValue {
                    _ = try await h.api.client.post("/orders/\(id)/cancel", json(["reason": "during reindex"]))
                    written += 1
                }
            }
            return written
        }()
        async let readers: Void = {
            while !stop.load(ordering: .relaxed) {
                do {
                    let count = try await h.elasticsearch.count(h.alias, query: existingQuery)
                    if count < existing.count { shortfalls.add(1, ordering: .relaxed) }
                } catch {
                    failures.add(1, ordering: .relaxed)
                }
            }
        }()
        let report = try await reindexer(h, batchSize: 40).run()
        stop.store(true, ordering: .relaxed)
        let written = try await writers
        try await readers
        #expect(written > 0)
        #expect(failures.load(ordering: .relaxed) == 0)
        #expect(shortfalls.load(ordering: .relaxed) == 0)
        #expect(report.documents >= 300)
        #expect(try await h.elasticsearch.aliasTargets(h.alias) == [report.newIndex])
        #expect(try await !h.elasticsearch.indexExists(before[0]))  // old index deleted
        #expect(await eventually(timeout: .seconds(60)) { await h.inSync() })
        #expect(try await h.database.count("SELECT count(*) FROM index_targets") == 0)
        let verify = try await DriftVerifier(pool: h.database.pool, client: h.elasticsearch, layout: IndexLayout(alias: h.alias),
                                             logger: TestEnvironment.logger).run(repair: false)
        #expect(verify.drifted == 0)
        #expect(verify.checked == 300 + written)
        await indexer.stop()
    }

    /// A failure injected mid-load leaves the alias and the live index untouched and removes the partial index.
    @Test func failedReindexLeavesLiveIndexUntouched() async throws {
        let h = try await IndexerHarness.start()
        defer { Task { await h.stop() } }
        let indexer = try h.startIndexer()
        let customer = try await h.api.createCustomer()
        _ = try await h.api.placeOrders(100, customerID: customer)
        #expect(await eventually(timeout: .seconds(60)) { await h.inSync() })
        let live = try await h.elasticsearch.aliasTargets(h.alias)

        let proxy = FaultProxy(upstream: try TestEnvironment.elasticsearchURL, logger: TestEnvironment.logger)
        let port = try await proxy.start()
        let proxied = ElasticsearchClient(configuration: .init(baseURL: "http://127.0.0.1:\(port)"))
        let injected = Atomic<Bool>(false)
        await #expect(throws: Reindexer.ReindexError.self) {
            try await reindexer(h, client: proxied, batchSize: 10).run { done, _ in
                if done >= 20, !injected.exchange(true, ordering: .relaxed) { proxy.inject(.status(400)) }
            }
        }
        #expect(injected.load(ordering: .relaxed))
        #expect(try await h.elasticsearch.aliasTargets(h.alias) == live)
        #expect(try await h.elasticsearch.count(h.alias) == 100)
        #expect(try await h.database.count("SELECT count(*) FROM index_targets") == 0)
        // Only the live index remains under this alias's prefix.
        let indices = try await h.elasticsearch.request("GET", "/\(h.alias)_v*/_alias").objectValue?.keys ?? []
        #expect(indices == live)
        await proxied.shutdown()
        await proxy.stop()
        await indexer.stop()
    }

    @Test func secondConcurrentReindexRefuses() async throws {
        let h = try await IndexerHarness.start()
        defer { Task { await h.stop() } }
        let holder = try PostgresConnection(connectionString: h.database.url)
        try holder.query("SELECT pg_advisory_lock($1)", [Reindexer.lockKey])
        await #expect(throws: Reindexer.ReindexError.self) { try await reindexer(h).run() }
        try holder.query("SELECT pg_advisory_unlock($1)", [Reindexer.lockKey])
    }

    /// A reindex while no indexer runs ends consistent once the indexer runs again.
    @Test func reindexWhileIndexerIsStopped() async throws {
        let h = try await IndexerHarness.start()
        defer { Task { await h.stop() } }
        let customer = try await h.api.createCustomer()
        _ = try await h.api.placeOrders(20, customerID: customer)
        let report = try await reindexer(h).run()
        #expect(report.documents == 20)
        _ = try await h.api.placeOrders(5, customerID: customer)
        let indexer = try h.startIndexer()
        #expect(await eventually { await h.inSync() })
        #expect(try await h.expectedVersions().count == 25)
        await indexer.stop()
    }

    /// verify finds a deleted, a stale and an extra document; --repair fixes all three.
    @Test func verifyFindsAndRepairsDrift() async throws {
        let h = try await IndexerHarness.start()
        defer { Task { await h.stop() } }
        let indexer = try h.startIndexer()
        let customer = try await h.api.createCustomer()
        let ids = try await h.api.placeOrders(30, customerID: customer)
        #expect(await eventually { await h.inSync() })
        await indexer.stop()

        let target = try await h.elasticsearch.aliasTargets(h.alias)[0]
        // Missing: delete a document. Stale: change PostgreSQL without an event. Extra: a document with no order.
        #expect(try await h.elasticsearch.send("DELETE", "/\(target)/_doc/\(ids[3])").status == 200)
        try await h.database.pool.query("UPDATE orders SET version = version + 1, note = 'edited' WHERE id = $1", [ids[7]])
        var doc = JSONWriter()
        doc.value(["order_id": "ord_ghost", "version": 1])
        #expect(try await h.elasticsearch.send("PUT", "/\(target)/_doc/ord_ghost?version=5&version_type=external", json: doc.bytes).status == 201)

        let verifier = DriftVerifier(pool: h.database.pool, client: h.elasticsearch, layout: IndexLayout(alias: h.alias), pageSize: 7,
                                     logger: TestEnvironment.logger)
        let found = Mutex<[DriftVerifier.Drift]>([])
        let report = try await verifier.run(repair: false) { drift in found.withLock { $0.append(drift) } }
        #expect(report.checked == 30)
        #expect(report.missing == 1 && report.stale == 1 && report.extra == 1)
        #expect(found.withLock { $0.map(\.id) }.sorted() == [ids[3], ids[7], "ord_ghost"].sorted())

        let repaired = try await verifier.run(repair: true)
        #expect(repaired.drifted == 3)
        #expect(repaired.repaired == 3)
        #expect(try await verifier.run(repair: false).drifted == 0)
        #expect(try await h.elasticsearch.get(h.alias, id: ids[7])?.source["note"]?.stringValue == "edited")
    }
}
