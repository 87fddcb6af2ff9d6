import ElasticsearchClient
import Foundation
import FaultProxy
import JSONSupport
@testable import OrderAdmin
import OrderStore
import LibPQClient
import ReadModel
import ServiceTesting
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

    /// A client whose requests pass through a fault proxy; both are closed afterwards.
    func withProxiedClient(_ body: (FaultProxy, ElasticsearchClient) async throws -> Void) async throws {
        let proxy = FaultProxy(upstream: try TestEnvironment.elasticsearchURL, logger: TestEnvironment.logger)
        try await withScoped({ proxy }, stop: { await $0.stop() }) { proxy in
            let port = try await proxy.start()
            try await withScoped({ ElasticsearchClient(configuration: .init(baseURL: "http://127.0.0.1:\(port)")) },
                                 stop: { await $0.shutdown() }) { try await body(proxy, $0) }
        }
    }

    /// A failed reindex left everything as it was: the alias on `live`, nothing registered for
    /// catch-up, and no other index under the alias's prefix.
    func expectLiveIndexUntouched(_ h: IndexerHarness, live: [String]) async throws {
        #expect(try await h.elasticsearch.aliasTargets(h.alias) == live)
        #expect(try await h.database.count("SELECT count(*) FROM index_targets") == 0)
        let indices = try await h.elasticsearch.request("GET", "/\(h.alias)_v*/_alias").objectValue?.keys ?? []
        #expect(indices == live)
    }

    /// Reindex while writers and readers run: no failed search, never fewer of the
    /// pre-existing orders, exact counts afterwards, verify clean.
    @Test func reindexUnderLoadLosesNothing() async throws {
        try await IndexerHarness.with() { h in
            let indexer = try h.startIndexer()
            let customer = try await h.api.createCustomer()
            let existing = try await h.api.placeOrders(300, customerID: customer)
            #expect(await eventually(timeout: .seconds(60)) { await h.inSync() })
            let before = try await h.elasticsearch.aliasTargets(h.alias)

            let stop = Locked(false)
            let failures = Locked(0)
            let shortfalls = Locked(0)
            let existingQuery: JSONValue = ["terms": ["order_id": .array(existing.map { .string($0) })]]
            async let writers: Int = {
                var written = 0
                while !stop.value {
                    let reply = try await h.api.placeOrder(customerID: customer)
                    if let id = reply.json["id"]?.stringValue {
                        _ = try await h.api.client.post("/orders/\(id)/cancel", json(["reason": "during reindex"]))
                        written += 1
                    }
                }
                return written
            }()
            async let readers: Void = {
                while !stop.value {
                    do {
                        let count = try await h.elasticsearch.count(h.alias, query: existingQuery)
                        if count < existing.count { shortfalls.update { $0 += 1 } }
                    } catch {
                        failures.update { $0 += 1 }
                    }
                }
            }()
            let report = try await reindexer(h, batchSize: 40).run()
            stop.update { $0 = true }
            let written = try await writers
            await readers
            #expect(written > 0)
            let failedSearches = failures.value, shortSearches = shortfalls.value
            #expect(failedSearches == 0)
            #expect(shortSearches == 0)
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
    }

    /// Changes made while the load runs reach the new index through the catch-up, not through the
    /// live indexer (which writes only into the alias): a customer renamed during the load has all
    /// its orders under the new name in the new index, new orders are there, and nothing recorded
    /// is left behind. Every bulk request of the reindex is held 1 s, so the load (6 pages) is
    /// still running when the live indexer has handled the changes.
    @Test func changesDuringTheLoadAreCaughtUpFromWhatLiveIndexersRecorded() async throws {
        try await IndexerHarness.with() { h in
            let indexer = try h.startIndexer()
            let renamed = try await h.api.createCustomer(name: "Carla Before")
            let other = try await h.api.createCustomer(name: "Otto Other")
            _ = try await h.api.placeOrders(40, customerID: renamed)
            _ = try await h.api.placeOrders(20, customerID: other)
            // The outbox drained too: the customers' own events (created, no change to their orders'
            // documents) claimed after the registration below would be recorded, and their orders copied.
            #expect(await eventually(timeout: .seconds(60)) {
                guard (try? await h.outboxCount()) == 0 else { return false }
                return await h.inSync()
            })
            try await withProxiedClient { proxy, proxied in
                proxy.inject(.delay(.seconds(1)), count: 100, onRequestsStartingWith: "POST /_bulk")
                async let report = reindexer(h, client: proxied, batchSize: 10).run()
                #expect(await eventually(timeout: .seconds(30), every: .milliseconds(20)) {
                    (try? await h.database.count("SELECT count(*) FROM index_targets")) == 1
                })
                #expect(try await h.api.client.patch("/customers/\(renamed)", json(["name": "Carla After"])).status == 200)
                let placed = try await h.api.placeOrders(5, customerID: other)
                #expect(await eventually(timeout: .seconds(30)) { (try? await h.database.count("SELECT count(*) FROM outbox")) == 0 })
                let done = try await report
                // The renamed customer's 40 orders, all loaded before the rename; the 5 new orders
                // too unless a page of the load read them after they were recorded.
                #expect((40...45).contains(done.caughtUp), "\(done.caughtUp)")
                #expect(try await h.elasticsearch.aliasTargets(h.alias) == [done.newIndex])
                try await h.elasticsearch.refresh(done.newIndex)
                let renamedQuery: JSONValue = ["term": ["customer.name.raw": "Carla After"]]
                #expect(try await h.elasticsearch.count(done.newIndex, query: renamedQuery) == 40)
                let placedQuery: JSONValue = ["terms": ["order_id": .array(placed.map { .string($0) })]]
                #expect(try await h.elasticsearch.count(done.newIndex, query: placedQuery) == 5)
                #expect(try await h.elasticsearch.count(done.newIndex) == 65)
            }
            #expect(try await h.database.count("SELECT count(*) FROM reindex_changes") == 0)
            await indexer.stop()
        }
    }

    /// The catch-up copies each changed order once however often it was recorded, and a customer's
    /// orders once however often the customer was: a read of the oldest changes takes the later
    /// ones of the same aggregates along. Pages of two changes; recorded: A, A, Y, B, A, Y, C (Y a
    /// customer with two orders) makes A, then B and Y's two, then C: five documents, where reading
    /// page by page alone would copy eight. Each read reports its progress; every recorded row is
    /// gone afterwards.
    @Test func theCatchUpCopiesAnAggregateOnceHoweverOftenItWasRecorded() async throws {
        try await IndexerHarness.with() { h in
            let x = try await h.api.createCustomer(), y = try await h.api.createCustomer()
            let xs = try await h.api.placeOrders(3, customerID: x)
            _ = try await h.api.placeOrders(2, customerID: y)
            let index = "\(h.alias)_catch_up_once"
            _ = try await h.elasticsearch.createIndex(index, body: try IndexLayout.mapping())
            let recorded = [("order", xs[0]), ("order", xs[0]), ("customer", y), ("order", xs[1]), ("order", xs[0]), ("customer", y), ("order", xs[2])]
            for (type, id) in recorded {
                try await h.database.pool.query("INSERT INTO reindex_changes (target, aggregate_type, aggregate_id) VALUES ('t', $1, $2)", [type, id])
            }
            let loader = FullLoader(pool: h.database.pool, writer: BulkWriter(client: h.elasticsearch, logger: TestEnvironment.logger),
                                    batchSize: 2, logger: TestEnvironment.logger)
            var passes: [[Int]] = []
            let summary = try await loader.catchUp(recordedFor: "t", into: .init(index: index, throughAlias: false), until: .empty,
                                                   progress: { passes.append([$0, $1]) })
            #expect(summary.documents == 5)
            #expect(passes == [[1, 4], [4, 1], [5, 0]])  // documents copied so far, changes still recorded
            #expect(try await h.database.count("SELECT count(*) FROM reindex_changes") == 0)
            try await h.elasticsearch.refresh(index)
            #expect(try await h.elasticsearch.count(index) == 5)
        }
    }

    /// A reindex's load forgets what live indexers recorded for it on the orders its pages then read
    /// (their documents hold those changes), once the page is acknowledged; a customer's records
    /// stay (its orders are spread over pages read before), as do other registrations' records.
    @Test func theLoadForgetsTheRecordsOfOrdersItRead() async throws {
        try await IndexerHarness.with() { h in
            let x = try await h.api.createCustomer(), y = try await h.api.createCustomer()
            let xs = try await h.api.placeOrders(3, customerID: x)
            for (target, type, id) in [("t", "order", xs[0]), ("t", "order", xs[2]), ("t", "customer", y), ("t", "order", xs[0]), ("u", "order", xs[1])] {
                try await h.database.pool.query("INSERT INTO reindex_changes (target, aggregate_type, aggregate_id) VALUES ($1, $2, $3)", [target, type, id])
            }
            let index = "\(h.alias)_load_forgets"
            _ = try await h.elasticsearch.createIndex(index, body: try IndexLayout.mapping())
            var loader = FullLoader(pool: h.database.pool, writer: BulkWriter(client: h.elasticsearch, logger: TestEnvironment.logger),
                                    batchSize: 2, logger: TestEnvironment.logger)
            loader.forgettingChangesRecordedFor = "t"
            #expect(try await loader.load(into: index, throughAlias: false).documents == 3)
            let left = try await h.database.pool.query("SELECT target, aggregate_type, aggregate_id FROM reindex_changes ORDER BY seq")
                .map { [$0.string("target"), $0.string("aggregate_type"), $0.string("aggregate_id")] }
            #expect(left == [["t", "customer", y], ["u", "order", xs[1]]])
        }
    }

    /// A full load keeps as many bulk requests out as asked (`reindex --requests-in-flight`). Every
    /// bulk request is held 2 s by the proxy: 1 s in, that many have arrived, and the load still
    /// writes every order once.
    @Test func aFullLoadKeepsItsRequestsInFlight() async throws {
        try await IndexerHarness.with() { h in
            let customer = try await h.api.createCustomer()
            _ = try await h.api.placeOrders(30, customerID: customer)
            for requestsInFlight in [1, 2] {
                try await withProxiedClient { proxy, proxied in
                    let index = "\(h.alias)_load_\(requestsInFlight)"
                    _ = try await h.elasticsearch.createIndex(index, body: try IndexLayout.mapping())
                    proxy.setPersistent(.delay(.seconds(2)))
                    let loader = FullLoader(pool: h.database.pool, writer: BulkWriter(client: proxied, logger: TestEnvironment.logger),
                                            batchSize: 10, requestsInFlight: requestsInFlight, logger: TestEnvironment.logger)
                    async let summary = loader.load(into: index, throughAlias: false)
                    try await Task.sleep(for: .seconds(1))
                    #expect(proxy.requestCount == requestsInFlight)
                    #expect(try await summary.documents == 30)
                    #expect(proxy.requestCount == 3)
                }
            }
        }
    }

    /// A failure injected mid-load leaves the alias and the live index untouched and removes the partial index.
    @Test func failedReindexLeavesLiveIndexUntouched() async throws {
        try await IndexerHarness.with() { h in
            let indexer = try h.startIndexer()
            let customer = try await h.api.createCustomer()
            _ = try await h.api.placeOrders(100, customerID: customer)
            #expect(await eventually(timeout: .seconds(60)) { await h.inSync() })
            let live = try await h.elasticsearch.aliasTargets(h.alias)

            try await withProxiedClient { proxy, proxied in
                let injected = Locked(false)
                await #expect(throws: Reindexer.ReindexError.self) {
                    try await reindexer(h, client: proxied, batchSize: 10).run { done, _ in
                        if done >= 20, injected.update({ let first = !$0; $0 = true; return first }) { proxy.inject(.status(400)) }
                    }
                }
                #expect(injected.value)
            }
            try await expectLiveIndexUntouched(h, live: live)
            #expect(try await h.elasticsearch.count(h.alias) == 100)
            await indexer.stop()
        }
    }

    /// A reindex killed mid-load leaves its registration and half-loaded index, but its lock went
    /// with its session: live indexers record nothing for it, and the next reindex removes both.
    @Test func aKilledReindexLeavesNothingInForce() async throws {
        try await IndexerHarness.with() { h in
            let indexer = try h.startIndexer()
            let customer = try await h.api.createCustomer()
            _ = try await h.api.placeOrders(5, customerID: customer)
            #expect(await eventually(timeout: .seconds(60)) { await h.inSync() })
            let abandoned = "\(h.alias)_v19990101000000000"
            _ = try await h.elasticsearch.createIndex(abandoned, body: try IndexLayout.mapping())
            let catchUp = IndexLayout(alias: h.alias).catchUpAlias(of: abandoned)
            try await h.elasticsearch.updateAliases([.add(index: abandoned, alias: catchUp)])
            try await h.database.pool.query("INSERT INTO index_targets (index_name) VALUES ($1)", [catchUp])
            _ = try await h.api.placeOrders(5, customerID: customer)
            #expect(await eventually(timeout: .seconds(60)) { await h.inSync() })
            try await h.elasticsearch.refresh(abandoned)
            #expect(try await h.elasticsearch.count(abandoned) == 0)
            #expect(try await h.database.count("SELECT count(*) FROM reindex_changes") == 0)  // nothing recorded for it
            let report = try await reindexer(h).run()
            #expect(try await !h.elasticsearch.indexExists(abandoned))
            #expect(try await h.database.count("SELECT count(*) FROM index_targets") == 0)
            #expect(try await h.elasticsearch.aliasTargets(h.alias) == [report.newIndex])
            #expect(try await h.elasticsearch.count(h.alias) == 10)
            await indexer.stop()
        }
    }

    /// A stopped reindex that could not delete its index from a busy cluster leaves it behind with its
    /// catch-up alias but without a registration (it unregisters first, to stop the live writes):
    /// the next reindex finds it by that alias and removes it.
    @Test func aReindexRemovesTheIndexAStoppedOneCouldNotDelete() async throws {
        try await IndexerHarness.with() { h in
            let customer = try await h.api.createCustomer()
            _ = try await h.api.placeOrders(5, customerID: customer)
            let layout = IndexLayout(alias: h.alias)
            _ = try await layout.ensureAlias(h.elasticsearch)
            let left = "\(h.alias)_v19990101000000000"
            _ = try await h.elasticsearch.createIndex(left, body: try IndexLayout.mapping())
            try await h.elasticsearch.updateAliases([.add(index: left, alias: layout.catchUpAlias(of: left))])
            #expect(try await h.elasticsearch.aliasTargets(layout.catchUpAliasPattern) == [left])
            let report = try await reindexer(h).run()
            #expect(try await !h.elasticsearch.indexExists(left))
            #expect(try await h.elasticsearch.aliasTargets(layout.catchUpAliasPattern) == [])
            #expect(try await h.elasticsearch.aliasTargets(h.alias) == [report.newIndex])
            #expect(try await h.elasticsearch.count(h.alias) == 5)
        }
    }

    /// An operator's Ctrl-C or a job runner's SIGTERM mid-load (every bulk request held 60 s): the
    /// reindex removes its half-loaded index and its catch-up registration, leaves the alias where
    /// it was, and exits promptly with 128 + the signal's number, instead of leaving them for the
    /// next reindex (a soak's killed reindex left 50,000 documents in a busy server for the rest of the run).
    /// With `busyCluster`, the clean-up's first alias read and first two deletes get 503: it asks
    /// again (a soak's stopped reindex, which tried once, left its index in a busy osmem-server).
    @Test(arguments: zip([SIGTERM, SIGINT, SIGTERM], [false, false, true]))
    func aReindexAskedToStopRemovesWhatItStarted(signal: Int32, busyCluster: Bool) async throws {
        try await IndexerHarness.with() { h in
            let customer = try await h.api.createCustomer()
            _ = try await h.api.placeOrders(20, customerID: customer)
            _ = try await IndexLayout(alias: h.alias).ensureAlias(h.elasticsearch)
            let live = try await h.elasticsearch.aliasTargets(h.alias)
            try await h.withFaultProxy { proxy, url in
                proxy.inject(.delay(.seconds(60)), count: 100, onRequestsStartingWith: "POST /_bulk")
                let admin = try h.startAdminProcess(["reindex", "--batch-size", "5"], elasticsearchURL: url)
                let registered = "SELECT count(*) FROM index_targets"
                #expect(await eventually(timeout: .seconds(30), every: .milliseconds(50)) { (try? await h.database.count(registered)) == 1 })
                let catchUp = try await h.database.pool.query("SELECT index_name FROM index_targets").first?.string(0) ?? ""
                let newIndex = try await h.elasticsearch.aliasTargets(catchUp).first ?? ""
                #expect(try await h.elasticsearch.indexExists(newIndex))
                try await Task.sleep(for: .milliseconds(500))  // a bulk request is out
                if busyCluster {
                    proxy.inject(.status(503), count: 1, onRequestsStartingWith: "GET /_alias/")
                    proxy.inject(.status(503), count: 2, onRequestsStartingWith: "DELETE /")
                }
                let started = ContinuousClock.now
                let status = await admin.stop(signal: signal, within: .seconds(15))
                #expect(status == 128 + signal, "exit status \(status.map(String.init) ?? "none: still running after 15 s")")
                #expect(ContinuousClock.now - started < .seconds(15))
                #expect(try await !h.elasticsearch.indexExists(newIndex))
            }
            try await expectLiveIndexUntouched(h, live: live)
        }
    }

    /// The session holding the reindex lock ends mid-load (as in a PostgreSQL restart): indexers
    /// stopped writing into the new index then, so the reindex must fail rather than swap.
    @Test func aReindexThatLostItsLockDoesNotSwap() async throws {
        try await IndexerHarness.with() { h in
            let customer = try await h.api.createCustomer()
            _ = try await h.api.placeOrders(100, customerID: customer)
            _ = try await IndexLayout(alias: h.alias).ensureAlias(h.elasticsearch)
            let live = try await h.elasticsearch.aliasTargets(h.alias)
            try await withProxiedClient { proxy, proxied in
                proxy.setPersistent(.delay(.milliseconds(100)))  // a load slow enough to lose the lock in
                let terminated = Locked(false)
                let pool = h.database.pool
                await #expect(throws: Reindexer.ReindexError.self) {
                    try await reindexer(h, client: proxied, batchSize: 10).run { done, _ in
                        guard done >= 10, terminated.update({ let first = !$0; $0 = true; return first }) else { return }
                        Task {
                            try await pool.query("""
                                SELECT pg_terminate_backend(pid) FROM pg_locks
                                WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()
                                  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                                  AND objid = \(UInt64(AdvisoryLock.reindex.key) & 0xFFFF_FFFF)
                                """)
                        }
                    }
                }
                #expect(terminated.value)
            }
            try await expectLiveIndexUntouched(h, live: live)
        }
    }

    /// The swap's answer is lost after the cluster applied it (`dropAnswer`), or the cluster refuses
    /// it as busy (503) or drops the connection before forwarding it: the reindex reads the alias
    /// back and either sees it done or tries again, and succeeds either way.
    @Test(arguments: [FaultProxy.Fault.dropAnswer, .status(503), .reset])
    func anUncertainAliasSwapIsSettledByReadingTheAliasBack(fault: FaultProxy.Fault) async throws {
        try await IndexerHarness.with() { h in
            let customer = try await h.api.createCustomer()
            _ = try await h.api.placeOrders(30, customerID: customer)
            _ = try await IndexLayout(alias: h.alias).ensureAlias(h.elasticsearch)
            let old = try await h.elasticsearch.aliasTargets(h.alias)
            let newIndex = Locked("")
            try await withProxiedClient { proxy, proxied in
                let report = try await reindexer(h, client: proxied, batchSize: 10).run { done, total in
                    // Loaded: the next `_aliases` call is the swap.
                    if done == total { proxy.inject(fault, onRequestsStartingWith: "POST /_aliases") }
                }
                #expect(proxy.faultsInjected == 1)
                #expect(report.oldIndices == old)
                newIndex.update { $0 = report.newIndex }
            }
            #expect(try await h.elasticsearch.aliasTargets(h.alias) == [newIndex.value])
            #expect(try await h.elasticsearch.aliasTargets(IndexLayout(alias: h.alias).catchUpAlias(of: newIndex.value)) == [])
            #expect(try await !h.elasticsearch.indexExists(old[0]))
            #expect(try await h.database.count("SELECT count(*) FROM index_targets") == 0)
            #expect(try await h.elasticsearch.count(h.alias) == 30)
        }
    }

    @Test func secondConcurrentReindexRefuses() async throws {
        try await IndexerHarness.with() { h in
            let holder = try LibPQConnection(connectionString: h.database.url)
            try holder.query("SELECT pg_advisory_lock($1)", [AdvisoryLock.reindex.key])
            await #expect(throws: Reindexer.ReindexError.self) { try await reindexer(h).run() }
            try holder.query("SELECT pg_advisory_unlock($1)", [AdvisoryLock.reindex.key])
        }
    }

    /// A reindex waits before each page while live indexing is behind (an outbox event older than
    /// the limit), at most its longest pause per page; it goes on as soon as live indexing caught
    /// up, and does not wait at all when nothing is behind.
    @Test func aReindexGivesWayToLiveIndexing() async throws {
        try await IndexerHarness.with() { h in
            let customer = try await h.api.createCustomer()
            _ = try await h.api.placeOrders(30, customerID: customer)  // 3 pages of 10; no indexer runs
            let behind = "UPDATE outbox SET created_at = clock_timestamp() - interval '60 seconds' WHERE id = (SELECT min(id) FROM outbox)"
            func reindex(longestPause: Duration, share: Double = 1) async throws -> Reindexer.Report {
                var options = Reindexer.Options()
                options.batchSize = 10
                options.yieldAtLag = .seconds(5)
                options.longestPausePerPage = longestPause
                options.mostOfRunTimeYielded = share
                return try await Reindexer(pool: h.database.pool, client: h.elasticsearch, layout: IndexLayout(alias: h.alias), options: options,
                                           logger: TestEnvironment.logger).run()
            }
            try await h.database.pool.query(behind)
            let waitedEachPage = try await reindex(longestPause: .seconds(1))
            #expect(waitedEachPage.documents == 30)
            #expect(waitedEachPage.yielded >= .seconds(3) && waitedEachPage.yielded < .seconds(8), "\(waitedEachPage.yielded)")

            // Live indexing catches up about 2 s into the first page's wait: the load goes on then. Counted
            // from the reindex's registration, just before its load, not from the start: creating the
            // index took long enough on a loaded CI machine for the wait to be over before it began.
            let catchingUp = Task {
                while try await h.database.count("SELECT count(*) FROM index_targets") == 0 {
                    try await Task.sleep(for: .milliseconds(20))
                }
                try await Task.sleep(for: .seconds(2))
                try await h.database.pool.query("DELETE FROM outbox")
            }
            let resumed = try await reindex(longestPause: .seconds(60))
            try await catchingUp.value
            #expect(resumed.documents == 30)
            #expect(resumed.yielded >= .seconds(1) && resumed.yielded < .seconds(10), "\(resumed.yielded)")

            let notBehind = try await reindex(longestPause: .seconds(60))
            #expect(notBehind.yielded < .seconds(1), "\(notBehind.yielded)")

            // Live indexing stays behind: the load waits at most a quarter of its running time in all
            // (without that bound, 60 s before each of its 3 pages).
            try await h.database.pool.query("""
                INSERT INTO outbox (aggregate_type, aggregate_id, aggregate_version, event_type, payload, occurred_at, created_at)
                VALUES ('order', 'ord_behind', 1, 'OrderPlaced', '{}', now(), clock_timestamp() - interval '60 seconds')
                """)
            let started = ContinuousClock.now
            let bounded = try await reindex(longestPause: .seconds(60), share: 0.25)
            let ran = ContinuousClock.now - started
            #expect(bounded.documents == 30)
            #expect(ran < .seconds(30), "\(ran)")
            #expect(bounded.yielded <= ran * 0.25 + .milliseconds(100), "\(bounded.yielded) of \(ran)")
            #expect(try await h.elasticsearch.count(h.alias) == 30)
        }
    }

    /// An admin call that timed out is tried again with twice the timeout (the cluster still works on
    /// the first, and the second queues behind it), up to 16 × the request timeout; other transient
    /// failures keep the timeout, and no attempt runs past the patience.
    @Test func aBusyClusterGetsLongerWaitsAfterEachTimeout() async throws {
        var configuration = ElasticsearchClient.Configuration(baseURL: "http://127.0.0.1:9")
        configuration.requestTimeout = .seconds(1)
        let client = ElasticsearchClient(configuration: configuration)
        let failures: [ElasticsearchError.Code] = [.timeout, .unavailable, .timeout, .timeout, .timeout, .timeout]
        let timeouts = Mutex<[Duration]>([])
        let answer = try await retryingWhileBusy(client) { timeout in
            let attempt = timeouts.withLock { $0.append(timeout); return $0.count - 1 }
            if attempt < failures.count { throw ElasticsearchError(code: failures[attempt], status: nil, errorType: nil) }
            return "answered"
        }
        #expect(answer == "answered")
        #expect(timeouts.withLock { $0 } == [1, 2, 2, 4, 8, 16, 16].map { Duration.seconds($0) })

        // A patience of 5 s: no attempt is given more than what is left of it (but at least the request timeout).
        timeouts.withLock { $0 = [] }
        await #expect(throws: ElasticsearchError.self) {
            try await retryingWhileBusy(client, for: .seconds(5)) { timeout in
                timeouts.withLock { $0.append(timeout) }
                throw ElasticsearchError(code: .timeout, status: nil, errorType: nil)
            }
        }
        #expect(timeouts.withLock { $0.count } >= 4)  // the fourth would get 8 s without the bound

        // A call known to take long (the refresh after a load) gets the longest wait at once.
        #expect(try await retryingWhileBusy(client, longestWaitFirst: true) { $0 } == .seconds(16))
        #expect(timeouts.withLock { $0.allSatisfy { $0 >= .seconds(1) && $0 <= .seconds(5) } }, "\(timeouts.withLock { $0 })")
        await client.shutdown()
    }

    /// A reindex while no indexer runs ends consistent once the indexer runs again.
    @Test func reindexWhileIndexerIsStopped() async throws {
        try await IndexerHarness.with() { h in
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
    }

    /// `count` orders of a new customer, every event acknowledged (an event still in the outbox
    /// would make its orders lag, not drift), and the indexer stopped again.
    func fullyIndexedOrders(_ count: Int, _ h: IndexerHarness) async throws -> (customer: String, ids: [String]) {
        let indexer = try h.startIndexer()
        let customer = try await h.api.createCustomer()
        let ids = try await h.api.placeOrders(count, customerID: customer)
        #expect(await eventually { await h.inSync() })
        #expect(await eventually { (try? await h.outboxCount()) == 0 })
        await indexer.stop()
        return (customer, ids)
    }

    /// verify finds a deleted, a stale and an extra document; --repair fixes all three.
    @Test func verifyFindsAndRepairsDrift() async throws {
        try await IndexerHarness.with() { h in
            let (customer, ids) = try await fullyIndexedOrders(30, h)

            let target = try await h.elasticsearch.aliasTargets(h.alias)[0]
            // Missing: an order whose event never reached the outbox. Stale: a change without an event.
            // Extra: a document with no order.
            try await h.database.pool.query("""
                INSERT INTO orders (id, version, status, customer_id, currency, total, ship_line1, ship_city, ship_postal_code, ship_country, created_at, updated_at)
                VALUES ('ord_unindexed', 1, 'pending', $1, 'EUR', 5.00, 'x', 'Oslo', '1', 'NO', now(), now())
                """, [customer])
            try await h.database.pool.query("UPDATE orders SET version = version + 1, note = 'edited' WHERE id = $1", [ids[7]])
            var doc = JSONWriter()
            doc.value(["order_id": "ord_ghost", "version": 1])
            #expect(try await h.elasticsearch.send("PUT", "/\(target)/_doc/ord_ghost?version=5&version_type=external", json: doc.bytes).status == 201)

            let verifier = DriftVerifier(pool: h.database.pool, client: h.elasticsearch, layout: IndexLayout(alias: h.alias), pageSize: 7,
                                         logger: TestEnvironment.logger)
            let found = Mutex<[DriftVerifier.Drift]>([])
            let report = try await verifier.run(repair: false) { drift in found.withLock { $0.append(drift) } }
            #expect(report.checked == 31)
            #expect(report.missing == 1 && report.stale == 1 && report.extra == 1)
            #expect(found.withLock { $0.map(\.id) }.sorted() == ["ord_unindexed", ids[7], "ord_ghost"].sorted())

            let repaired = try await verifier.run(repair: true)
            #expect(repaired.drifted == 3)
            #expect(repaired.repaired == 3)
            let after = Mutex<[DriftVerifier.Drift]>([])
            #expect(try await verifier.run(repair: false) { drift in after.withLock { $0.append(drift) } }.drifted == 0)
            #expect(after.withLock { $0 } == [])
            #expect(try await h.elasticsearch.get(h.alias, id: ids[7])?.source["note"]?.stringValue == "edited")
        }
    }

    /// A busy cluster (429s, and a 503 for every other request) slows `verify --repair` down but
    /// does not fail it: its reads are retried with backoff, its repair writes too.
    @Test func verifyRidesOutABusyCluster() async throws {
        try await IndexerHarness.with() { h in
            let (_, ids) = try await fullyIndexedOrders(30, h)
            // A change without an event: verify must read the index (pages, a realtime GET) and write the repair.
            try await h.database.pool.query("UPDATE orders SET version = version + 1, note = 'edited' WHERE id = $1", [ids[3]])

            let proxy = FaultProxy(upstream: try TestEnvironment.elasticsearchURL, logger: TestEnvironment.logger)
            try await withScoped({ proxy }, stop: { await $0.stop() }) { proxy in
                let port = try await proxy.start()
                try await withScoped({ ElasticsearchClient(configuration: .init(baseURL: "http://127.0.0.1:\(port)")) },
                                     stop: { await $0.shutdown() }) { busy in
                    proxy.inject(.status(429), count: 3)
                    proxy.setPeriodic(every: 2, .status(503))
                    let report = try await DriftVerifier(pool: h.database.pool, client: busy, layout: IndexLayout(alias: h.alias), pageSize: 7,
                                                         logger: TestEnvironment.logger).run(repair: true)
                    #expect(report.checked == 30)
                    #expect(report.stale == 1 && report.repaired == 1 && report.missing == 0 && report.extra == 0)
                    #expect(proxy.faultsInjected >= 6)
                }
            }
            #expect(try await h.elasticsearch.get(h.alias, id: ids[3])?.source["note"]?.stringValue == "edited")
        }
    }
}

/// A value shared between test tasks.
final class Locked<T: Sendable>: Sendable {
    private let mutex: Mutex<T>
    init(_ value: T) { mutex = Mutex(value) }
    var value: T { mutex.withLock { $0 } }
    @discardableResult func update<R: Sendable>(_ body: (inout T) -> R) -> R { mutex.withLock { body(&$0) } }
}
