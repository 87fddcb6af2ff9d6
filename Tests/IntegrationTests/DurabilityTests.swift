import ElasticsearchClient
import FaultProxy
import Foundation
import IndexSchema
import LibPQClient
import OrderAdmin
import OrderIndexer
import OrderSearchAPI
import OrderDomain
import TokenSigning
import ReadModel
import Synchronization
import ServiceTesting
import Testing

/// Guarantees 6–8 under faults that last: no long transactions, resumable fan-out,
/// graceful stop, reconnecting after PostgreSQL drops its sessions.
@Suite struct DurabilityTests {
    /// The age of the oldest open transaction of the in-process indexers' sessions, in seconds (0 when none).
    static let oldestIndexerTransaction = """
        SELECT COALESCE(max(extract(epoch FROM clock_timestamp() - xact_start)), 0)::float8 FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = '\(IndexerHarness.indexerApplicationName)' AND xact_start IS NOT NULL
        """

    static func seconds(_ database: TestDatabase, _ sql: String) async throws -> Double {
        Double(try await database.pool.query(sql).first?.string(0) ?? "0") ?? 0
    }

    /// Guarantee 6: Elasticsearch answers 503 to everything for two minutes while commands keep
    /// arriving; the indexer never keeps a transaction open, then catches up with nothing lost.
    @Test func anElasticsearchOutageHoldsNoTransactionOpen() async throws {
        try await IndexerHarness.with { h in
            let proxy = FaultProxy(upstream: h.elasticsearchURL, logger: TestEnvironment.logger)
            let port = try await proxy.start()
            let customer = try await h.api.createCustomer()
            _ = try await h.api.placeOrders(20, customerID: customer)
            let indexer = try h.startIndexer(elasticsearchURL: "http://127.0.0.1:\(port)")
            #expect(await eventually { (try? await h.outboxCount()) == 0 })
            proxy.setPersistent(.status(503))
            var oldest = 0.0
            let outageStart = ContinuousClock.now
            var placed = 0
            while ContinuousClock.now - outageStart < .seconds(120) {
                if placed < 60 { placed += try await h.api.placeOrders(3, customerID: customer).count }  // guarantee 4
                oldest = max(oldest, try await Self.seconds(h.database, Self.oldestIndexerTransaction))
                try await Task.sleep(for: .seconds(1))
            }
            #expect(placed == 60)
            #expect(try await h.outboxCount() == 60)  // nothing acknowledged while Elasticsearch refused
            #expect(oldest < 5, "an indexer transaction stayed open \(oldest) s during the outage")
            proxy.setPersistent(nil)
            #expect(await eventually(timeout: .seconds(60)) { await h.inSync() })
            #expect(await eventually { (try? await h.outboxCount()) == 0 })
            #expect(try await h.expectedVersions().count == 80)
            await indexer.stop()
            await proxy.stop()
        }
    }

    /// One indexer behind a proxy that answers 503, one healthy: the sick one hands its events
    /// back instead of holding them, the healthy one indexes them, and the sick one claims no
    /// newer events while its cluster does not answer.
    @Test func aSickIndexerHandsItsEventsBack() async throws {
        try await IndexerHarness.with { h in try await h.withFaultProxy { proxy, proxyURL in
            proxy.setPersistent(.status(503))
            // The index exists, as in production: the healthy indexer indexes the events it is handed
            // rather than rebuilding a missing index (which would make the orders searchable without them).
            _ = try await IndexLayout(alias: h.alias).ensureAlias(h.elasticsearch)
            let customer = try await h.api.createCustomer()
            _ = try await h.api.placeOrders(10, customerID: customer)
            let sick = try h.startIndexer(elasticsearchURL: proxyURL, workers: 2)
            #expect(await eventually { (try? await h.database.count("SELECT count(*) FROM outbox WHERE lease_owner IS NOT NULL")) ?? 0 > 0 })
            let healthy = try h.startIndexer()
            // The default hand-back (10 s) plus a backoff, well before the sick lease (30 s) would lapse.
            #expect(await eventually(timeout: .seconds(25)) { await h.inSync() })
            // Every event acknowledged (a generous bound: a loaded CI machine once needed more than 30 s).
            #expect(await eventually(timeout: .seconds(60)) { (try? await h.outboxCount()) == 0 })
            // Newer events: the sick one claims none while its cluster does not answer (each of its
            // batches would hold events for the 10 s hand-back time that a healthy indexer could use).
            #expect(proxy.faultsInjected > 0)  // the sick one really was sick
            await healthy.stop()
            try await Task.sleep(for: .seconds(6))  // past the sick one's longest backoff (5 s): it could claim
            _ = try await h.api.placeOrders(10, customerID: customer)
            try await Task.sleep(for: .seconds(3))
            #expect(try await h.database.count("SELECT count(*) FROM outbox WHERE lease_owner IS NOT NULL") == 0)
            #expect(try await h.outboxCount() == 10)
            let healthyAgain = try h.startIndexer()
            #expect(await eventually(timeout: .seconds(25)) {
                guard (try? await h.outboxCount()) == 0 else { return false }
                return await h.inSync()
            })
            await healthyAgain.stop()
            await sick.stop()
        } }
    }

    /// Every bulk request answered, but only after 5 s, beside a 2 s lease: the worker renews its
    /// lease while the request is out, so no other worker claims the same events and the busy
    /// cluster is sent each of them once.
    @Test func aSlowClusterIsNotSentTheSameEventsTwice() async throws {
        try await IndexerHarness.with { h in try await h.withFaultProxy { proxy, proxyURL in
            _ = try await IndexLayout(alias: h.alias).ensureAlias(h.elasticsearch)
            proxy.inject(.delay(.seconds(5)), count: 100, onRequestsStartingWith: "POST /_bulk")
            let customer = try await h.api.createCustomer()
            _ = try await h.api.placeOrders(10, customerID: customer)
            let indexer = try h.startIndexer(elasticsearchURL: proxyURL, workers: 2) {
                $0.processor.lease = .seconds(2)
                $0.processor.handBackAfter = .seconds(1)
            }
            var attempts = 0
            let started = ContinuousClock.now
            while ContinuousClock.now - started < .seconds(30), try await h.outboxCount() > 0 {
                attempts = max(attempts, try await h.database.count("SELECT COALESCE(max(attempts), 0) FROM outbox"))
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(try await h.outboxCount() == 0)
            #expect(attempts == 1, "events were claimed again while their bulk request was out")
            #expect(await h.inSync())
            await indexer.stop()
        } }
    }

    /// Every bulk request takes 3 s, longer than the client's 2 s request timeout: the first is
    /// abandoned, and the writer waits longer for the next instead of abandoning the same work
    /// again and again until it gives up.
    @Test func theBulkWriterWaitsLongerForAClusterSlowerThanItsTimeout() async throws {
        try await IndexerHarness.with { h in try await h.withFaultProxy { proxy, proxyURL in
            _ = try await IndexLayout(alias: h.alias).ensureAlias(h.elasticsearch)
            proxy.setPersistent(.delay(.seconds(3)))
            var configuration = ElasticsearchClient.Configuration(baseURL: proxyURL)
            configuration.requestTimeout = .seconds(2)
            configuration.lowSpeedTime = .seconds(1)  // a longer timeout lifts it: the server sends nothing until done
            try await withScoped({ ElasticsearchClient(configuration: configuration) }, stop: { await $0.shutdown() }) { client in
                let writer = BulkWriter(client: client, logger: TestEnvironment.logger)
                let outcomes = try await writer.write({ _ in
                    var request = BulkRequest()
                    request.index(h.alias, id: "slow-1", version: 1, requireAlias: true) { $0.value(["order_id": "slow-1"]) }
                    return request
                }, count: 1, giveUpAt: .now + .seconds(20))
                #expect(outcomes == [.applied] || outcomes == [.stale])  // stale: the server did the abandoned request all the same
                #expect(proxy.requestCount == 2)  // one abandoned, one answered
                #expect(writer.timeout.current >= .seconds(4))
            }
        } }
    }

    /// Bulk requests take 5 s while reads answer at once: the cluster's queue holds this writer's
    /// requests behind other processes' work, so none of its own requests is answered between its
    /// timeouts. A `_count` of the alias that answers says busy, not gone: the timeout keeps doubling
    /// (1, 2, 4, 8 s) until a request is waited out. Without the probe it stays at 2 s, and every
    /// attempt is abandoned and sent again (a soak: events claimed 35 times).
    @Test func aProbeThatAnswersLetsTheBulkWriterWaitOutAQueue() async throws {
        try await IndexerHarness.with { h in try await h.withFaultProxy { proxy, proxyURL in
            _ = try await IndexLayout(alias: h.alias).ensureAlias(h.elasticsearch)
            proxy.inject(.delay(.seconds(5)), count: 100, onRequestsStartingWith: "POST /_bulk")
            var configuration = ElasticsearchClient.Configuration(baseURL: proxyURL)
            configuration.requestTimeout = .seconds(1)
            configuration.lowSpeedTime = .seconds(1)
            try await withScoped({ ElasticsearchClient(configuration: configuration) }, stop: { await $0.shutdown() }) { client in
                func write(_ writer: BulkWriter, id: String, within: Duration) async throws -> [BulkItemOutcome] {
                    try await writer.write({ _ in
                        var request = BulkRequest()
                        request.index(h.alias, id: id, version: 1, requireAlias: true) { $0.value(["order_id": .string(id)]) }
                        return request
                    }, count: 1, giveUpAt: .now + within)
                }
                let unprobed = BulkWriter(client: client, logger: TestEnvironment.logger)
                await #expect(throws: BulkWriter.GaveUp.self) { try await write(unprobed, id: "queued-1", within: .seconds(7)) }
                #expect(unprobed.timeout.current == .seconds(2))

                let probed = BulkWriter(client: client, probeIndex: h.alias, logger: TestEnvironment.logger)
                let outcomes = try await write(probed, id: "queued-2", within: .seconds(40))
                #expect(outcomes == [.applied] || outcomes == [.stale])
                #expect(probed.timeout.current >= .seconds(8))
            }
        } }
    }

    /// A writer that gives up says what its last attempt got, so the hand-back metric tells an
    /// error answer from a cluster that could not be reached.
    @Test func aWriterThatGivesUpSaysWhatItsLastAttemptGot() async throws {
        try await IndexerHarness.with { h in try await h.withFaultProxy { proxy, proxyURL in
            _ = try await IndexLayout(alias: h.alias).ensureAlias(h.elasticsearch)
            try await withScoped({ ElasticsearchClient(configuration: .init(baseURL: proxyURL)) }, stop: { await $0.shutdown() }) { client in
                let writer = BulkWriter(client: client, logger: TestEnvironment.logger)
                func lastAttempt(after fault: FaultProxy.Fault) async -> BulkWriter.GaveUp.LastAttempt? {
                    proxy.setPersistent(fault)
                    do {
                        _ = try await writer.write({ _ in
                            var request = BulkRequest()
                            request.index(h.alias, id: "gives-up", version: 1, requireAlias: true) { $0.value(["order_id": "gives-up"]) }
                            return request
                        }, count: 1, giveUpAt: .now + .seconds(1))
                        return nil
                    } catch {
                        return (error as? BulkWriter.GaveUp)?.lastAttempt
                    }
                }
                #expect(await lastAttempt(after: .status(503)) == .errorAnswer)
                #expect(await lastAttempt(after: .reset) == .noConnection)
            }
        } }
    }

    /// The first bulk request takes 4 s, twice its 2 s timeout: the cluster is busy, not gone, and
    /// most likely still indexing what was abandoned. The batch is handed back with a pause as long
    /// as it already waited, so no worker (here the other one, woken at once without the pause)
    /// sends the same documents again before then.
    @Test func aBatchThatTimedOutOnABusyClusterIsNotSentAgainAtOnce() async throws {
        try await IndexerHarness.with { h in try await h.withFaultProxy { proxy, proxyURL in
            _ = try await IndexLayout(alias: h.alias).ensureAlias(h.elasticsearch)
            proxy.inject(.delay(.seconds(4)), count: 1, onRequestsStartingWith: "POST /_bulk")
            let customer = try await h.api.createCustomer()
            _ = try await h.api.placeOrders(10, customerID: customer)
            let events = try await h.outboxCount()
            let indexer = try h.startIndexer(elasticsearchURL: proxyURL, workers: 2, requestTimeout: .seconds(2)) {
                $0.processor.handBackAfter = .milliseconds(500)
            }
            var firstClaim: ContinuousClock.Instant?
            var pausedRows = 0
            let started = ContinuousClock.now
            while ContinuousClock.now - started < .seconds(30), try await h.outboxCount() > 0 {
                let row = try await h.database.pool.query("""
                    SELECT COALESCE(max(attempts), 0),
                           count(*) FILTER (WHERE lease_owner IS NULL AND lease_until > clock_timestamp()) FROM outbox
                    """).first
                if (row?.int(0) ?? 0) >= 1, firstClaim == nil { firstClaim = .now }
                pausedRows = max(pausedRows, row?.int(1) ?? 0)
                try await Task.sleep(for: .milliseconds(50))
            }
            let drained = ContinuousClock.now
            #expect(try await h.outboxCount() == 0)
            #expect(pausedRows == events, "the batch was not handed back with a pause")
            // The second request is answered at once (no delay), so the outbox drains right after it is
            // sent: 2 s until the timeout, then the 2 s pause. Handed back without one, it drained at ~2.3 s.
            let first = try #require(firstClaim)
            #expect(drained - first >= .milliseconds(3700), "sent again and acknowledged \(drained - first) after the first claim")
            #expect(proxy.faultsInjected == 1)
            #expect(await h.inSync())
            await indexer.stop()
        } }
    }

    /// A customer rename fans out in chunks; the indexer is killed mid-way; the next one resumes
    /// from the recorded progress (never below it) and every order shows the new name.
    @Test func customerFanOutResumesFromItsProgress() async throws {
        try await IndexerHarness.with { h in
            let customer = try await h.api.createCustomer(name: "Before Rename")
            _ = try await h.api.placeOrders(200, customerID: customer)
            let first = try h.startIndexer()
            #expect(await eventually(timeout: .seconds(60)) { await h.inSync() })
            await first.stop()

            let proxy = FaultProxy(upstream: h.elasticsearchURL, logger: TestEnvironment.logger)
            let port = try await proxy.start()
            proxy.setPersistent(.delay(.milliseconds(300)))
            let indexer = try h.startIndexerProcess(elasticsearchURL: "http://127.0.0.1:\(port)", settings: ["INDEXER_FAN_OUT_CHUNK": "20", "INDEXER_LEASE_MS": "2000"])
            #expect(try await h.api.client.patch("/customers/\(customer)", json(["name": "After Rename"])).status == 200)
            let progress = "SELECT fanout_after FROM outbox WHERE aggregate_type = 'customer' AND fanout_after IS NOT NULL"
            #expect(await eventually(timeout: .seconds(30), every: .milliseconds(20)) {
                (try? await h.database.pool.query(progress).first?.string(0)) != nil
            })
            indexer.kill()
            let recorded = try #require(try await h.database.pool.query(progress).first?.string(0))
            proxy.setPersistent(.delay(.milliseconds(100)))
            let survivor = try h.startIndexer(elasticsearchURL: "http://127.0.0.1:\(port)") { $0.processor.fanOutChunk = 20 }
            var seen: [String] = []
            let started = ContinuousClock.now
            while ContinuousClock.now - started < .seconds(60), try await h.outboxCount() > 0 {
                if let value = try await h.database.pool.query(progress).first?.string(0) { seen.append(value) }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(!seen.isEmpty)
            #expect(seen.allSatisfy { $0 >= recorded }, "the fan-out restarted below its recorded progress")
            #expect(await eventually { await h.inSync() })
            let renamed = try await h.elasticsearch.count(h.alias, query: ["term": [IndexField.customerNameRaw.path: "After Rename"]])
            #expect(renamed == 200)
            await survivor.stop()
            await proxy.stop()
        }
    }

    /// A customer renamed again while the first rename still fans out (one worker, 20 orders per
    /// chunk, each bulk request 200 ms): the first fan-out stops at its next chunk, since the newer
    /// change re-reads every order anyway, and every order ends with the newest name.
    @Test func aNewerCustomerChangeSupersedesAFanOutUnderWay() async throws {
        try await IndexerHarness.with { h in
            let customer = try await h.api.createCustomer(name: "First Name")
            _ = try await h.api.placeOrders(200, customerID: customer)
            let first = try h.startIndexer()
            // Drained, not only in sync: the customer's registration must not share the rename's batch.
            #expect(await eventually(timeout: .seconds(60)) {
                guard await h.inSync() else { return false }
                return (try? await h.outboxCount()) == 0
            })
            await first.stop()

            try await h.withFaultProxy { proxy, proxyURL in
                proxy.setPersistent(.delay(.milliseconds(200)))
                let indexer = try h.startIndexer(elasticsearchURL: proxyURL, workers: 1) { $0.processor.fanOutChunk = 20 }
                #expect(try await h.api.client.patch("/customers/\(customer)", json(["name": "Second Name"])).status == 200)
                let oldest = "SELECT id, fanout_after FROM outbox WHERE aggregate_type = 'customer' ORDER BY id LIMIT 1"
                #expect(await eventually(timeout: .seconds(30), every: .milliseconds(20)) {
                    (try? await h.database.pool.query(oldest).first?.string(1)) != nil
                })
                let firstChange = try #require(try await h.database.pool.query(oldest).first?.string(0))
                #expect(try await h.api.client.patch("/customers/\(customer)", json(["name": "Third Name"])).status == 200)
                // The chunks the first fan-out recorded until its row was gone: one or two before the
                // newer change committed and one under way then, against all 10 without superseding.
                var chunks = Set<String>()
                let started = ContinuousClock.now
                while ContinuousClock.now - started < .seconds(60),
                      let row = try await h.database.pool.query("SELECT fanout_after FROM outbox WHERE id = $1::bigint", [firstChange]).first {
                    if let progress = row.string(0) { chunks.insert(progress) }
                    try await Task.sleep(for: .milliseconds(20))
                }
                #expect(!chunks.isEmpty)
                #expect(chunks.count <= 4, "the first fan-out went on for \(chunks.count) of 10 chunks")
                #expect(await eventually(timeout: .seconds(60)) { await h.inSync() })
                let renamed = try await h.elasticsearch.count(h.alias, query: ["term": [IndexField.customerNameRaw.path: "Third Name"]])
                #expect(renamed == 200)
                await indexer.stop()
            }
        }
    }

    /// Guarantee 7: SIGTERM while a batch waits for a slow Elasticsearch: the indexer finishes
    /// it, hands back nothing half-done, and exits 0 within 10 s.
    @Test func sigtermFinishesTheBatchInHandAndExitsZero() async throws {
        try await IndexerHarness.with { h in
            _ = try await IndexLayout(alias: h.alias).ensureAlias(h.elasticsearch)
            let customer = try await h.api.createCustomer()
            _ = try await h.api.placeOrders(30, customerID: customer)
            let proxy = FaultProxy(upstream: h.elasticsearchURL, logger: TestEnvironment.logger)
            let port = try await proxy.start()
            proxy.setPersistent(.delay(.seconds(2)))
            let indexer = try h.startIndexerProcess(elasticsearchURL: "http://127.0.0.1:\(port)", settings: ["INDEXER_BATCH_SIZE": "5", "INDEXER_WORKERS": "1"])
            let leased = "SELECT count(*) FROM outbox WHERE lease_owner IS NOT NULL"
            #expect(await eventually(timeout: .seconds(30), every: .milliseconds(20)) { (try? await h.database.count(leased)) ?? 0 > 0 })
            let before = try await h.outboxCount()
            let status = await indexer.stop(within: .seconds(10))
            #expect(status == 0)
            #expect(try await h.outboxCount() < before)  // the batch in hand was finished, not dropped
            #expect(try await h.database.count(leased) == 0)  // and nothing is left claimed
            proxy.setPersistent(nil)
            let survivor = try h.startIndexer()
            #expect(await eventually(timeout: .seconds(60)) { await h.inSync() })
            await survivor.stop()
            await proxy.stop()
        }
    }

    /// Guarantee 7 when the batch in hand outlives the grace (a bulk request that hangs for 60 s):
    /// the indexer hands the batch back and exits 0 within 10 s, not waiting for the transfer.
    @Test func sigtermDoesNotWaitForAHangingBulkRequest() async throws {
        try await IndexerHarness.with { h in
            _ = try await IndexLayout(alias: h.alias).ensureAlias(h.elasticsearch)
            let customer = try await h.api.createCustomer()
            let proxy = FaultProxy(upstream: h.elasticsearchURL, logger: TestEnvironment.logger)
            try await withScoped({ proxy }, stop: { await $0.stop() }) { proxy in
                let port = try await proxy.start()
                let indexer = try h.startIndexerProcess(elasticsearchURL: "http://127.0.0.1:\(port)", settings: ["INDEXER_WORKERS": "1"])
                #expect(await eventually(timeout: .seconds(30)) { (try? await h.outboxCount()) == 0 })  // up and idle
                proxy.setPersistent(.delay(.seconds(60)))
                _ = try await h.api.placeOrders(10, customerID: customer)
                let leased = "SELECT count(*) FROM outbox WHERE lease_owner IS NOT NULL"
                #expect(await eventually(timeout: .seconds(30), every: .milliseconds(20)) { (try? await h.database.count(leased)) ?? 0 > 0 })
                try await Task.sleep(for: .milliseconds(500))  // the bulk request is out
                let started = ContinuousClock.now
                let status = await indexer.stop(within: .seconds(10))
                #expect(status == 0, "exit status \(status.map(String.init) ?? "none: still running after 10 s")")
                #expect(ContinuousClock.now - started < .seconds(10))
                #expect(try await h.database.count(leased) == 0)  // handed back
                #expect(try await h.outboxCount() == 10)  // nothing acknowledged that was not indexed
            }
        }
    }

    /// Guarantee 6 (PostgreSQL side): every session of the indexer, its LISTEN connection
    /// included, is terminated as in a server restart; it reconnects and indexes what follows.
    @Test func theIndexerReconnectsAfterPostgreSQLDropsItsSessions() async throws {
        try await IndexerHarness.with { h in
            let indexer = try h.startIndexer()
            let customer = try await h.api.createCustomer()
            _ = try await h.api.placeOrders(5, customerID: customer)
            #expect(await eventually { await h.inSync() })
            let killed = try await TestDatabase.terminateSessions(of: h.database)
            #expect(killed > 0)
            _ = try await h.api.placeOrders(5, customerID: customer)
            #expect(await eventually(timeout: .seconds(30)) { await h.inSync() })
            #expect(try await h.expectedVersions().count == 10)
            await indexer.stop()
        }
    }

    /// A self-heal rebuild killed half-way (its row in `index_rebuilds` left behind, the alias
    /// already there, most documents missing): the next indexer loads everything again.
    @Test func anUnfinishedRebuildIsResumedByTheNextIndexer() async throws {
        try await IndexerHarness.with { h in
            let customer = try await h.api.createCustomer()
            _ = try await h.api.placeOrders(20, customerID: customer)
            try await h.database.pool.query("DELETE FROM outbox")  // only the rebuild can bring them in
            _ = try await IndexLayout(alias: h.alias).ensureAlias(h.elasticsearch)
            try await h.database.pool.query("INSERT INTO index_rebuilds (alias) VALUES ($1)", [h.alias])
            let indexer = try h.startIndexer()
            #expect(await eventually { await h.inSync() })
            #expect(try await h.expectedVersions().count == 20)
            #expect(await eventually { (try? await h.database.count("SELECT count(*) FROM index_rebuilds")) == 0 })
            await indexer.stop()
        }
    }

    /// Guarantee 8: `verify --repair` five times while orders are placed and paid. No run calls an
    /// order in flight drift, none removes or hides one, and afterwards every order is searchable.
    @Test func verifyRepairOnALiveSystemNeverHidesAnOrder() async throws {
        try await IndexerHarness.with { h in
            let indexer = try h.startIndexer()
            let customer = try await h.api.createCustomer()
            _ = try await h.api.placeOrders(50, customerID: customer)
            #expect(await eventually { await h.inSync() })
            let writing = Task {
                var placed = 0
                while !Task.isCancelled, placed < 400 {
                    let reply = try await h.api.placeOrder(customerID: customer)
                    let id = try #require(reply.json["id"]?.stringValue)
                    placed += 1
                    if placed % 2 == 0 { _ = try await h.api.client.post("/orders/\(id)/pay", json(["payment_reference": .string("p\(placed)"), "amount": "59.97"])) }
                }
                return placed
            }
            let verifier = DriftVerifier(pool: h.database.pool, client: h.elasticsearch, layout: IndexLayout(alias: h.alias), pageSize: 50,
                                         logger: TestEnvironment.logger)
            var lagging = 0
            for _ in 0..<5 {
                try await Task.sleep(for: .milliseconds(300))
                let report = try await verifier.run(repair: true)
                #expect(report.drifted == 0, "in-flight orders counted as drift: \(report)")
                lagging += report.lagging
            }
            writing.cancel()
            _ = await writing.result
            #expect(lagging > 0)  // the runs did meet orders in flight
            #expect(await eventually(timeout: .seconds(60)) { await h.inSync() })
            #expect(try await verifier.run(repair: false).drifted == 0)
            await indexer.stop()
        }
    }

    /// A document deleted by hand leaves a tombstone that refuses its version until
    /// `index.gc_deletes` passes: `--repair` waits it out by itself and ends exact.
    @Test func verifyRepairWaitsOutADeleteTombstone() async throws {
        try await IndexerHarness.with { h in
            let indexer = try h.startIndexer()
            let customer = try await h.api.createCustomer()
            let ids = try await h.api.placeOrders(5, customerID: customer)
            #expect(await eventually { await h.inSync() })
            #expect(await eventually { (try? await h.outboxCount()) == 0 })
            await indexer.stop()
            let target = try await h.elasticsearch.aliasTargets(h.alias)[0]
            _ = try await h.elasticsearch.request("PUT", "/\(target)/_settings", json: Array(#"{"index":{"gc_deletes":"3s"}}"#.utf8))
            #expect(try await h.elasticsearch.send("DELETE", "/\(target)/_doc/\(ids[2])").status == 200)
            var verifier = DriftVerifier(pool: h.database.pool, client: h.elasticsearch, layout: IndexLayout(alias: h.alias),
                                         logger: TestEnvironment.logger)
            verifier.tombstoneWait = .seconds(60)
            let progress = Mutex<[String]>([])
            let report = try await verifier.run(repair: true, onProgress: { line in progress.withLock { $0.append(line) } })
            #expect(report.missing == 1 && report.repaired == 1)
            #expect(progress.withLock { $0.contains { $0.contains("tombstone") } })
            #expect(try await h.elasticsearch.get(h.alias, id: ids[2]) != nil)
            #expect(try await verifier.run(repair: false).drifted == 0)
        }
    }

    /// Documents the new index refuses become dead letters; the reindex fails and the live index stays.
    @Test func reindexRefusalsBecomeDeadLetters() async throws {
        try await IndexerHarness.with { h in
            let indexer = try h.startIndexer()
            let customer = try await h.api.createCustomer()
            _ = try await h.api.placeOrders(4, customerID: customer)
            #expect(await eventually { await h.inSync() })
            await indexer.stop()
            let live = try await h.elasticsearch.aliasTargets(h.alias)
            // A mapping in which the customer's e-mail must be a number: every document is refused.
            let lines = String(decoding: try IndexLayout.mapping(), as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            let mapping = lines.map { $0.contains(#""email":"#) ? #""email": { "type": "long" },"# : String($0) }.joined(separator: "\n")
            #expect(mapping.contains(#""email": { "type": "long" }"#))
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(h.alias)-mapping.json").path
            try mapping.write(toFile: path, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: path) }
            var options = Reindexer.Options()
            options.mappingPath = path
            let reindexer = Reindexer(pool: h.database.pool, client: h.elasticsearch, layout: IndexLayout(alias: h.alias), options: options,
                                      logger: TestEnvironment.logger)
            await #expect { try await reindexer.run() } throws: {
                if case .rejectedDocuments(4)? = $0 as? Reindexer.ReindexError { true } else { false }
            }
            #expect(try await h.database.count("SELECT count(*) FROM dead_letters WHERE event_type = 'Reindex' AND error_status = 400") == 4)
            #expect(try await h.elasticsearch.aliasTargets(h.alias) == live)
            #expect(try await h.elasticsearch.count(h.alias) == 4)
            #expect(try await h.database.count("SELECT count(*) FROM index_targets") == 0)
        }
    }

    /// Guarantee 7 for the search API: SIGTERM while a read-your-writes wait is in flight; the
    /// request is answered, then the process exits 0.
    @Test func theSearchAPIFinishesRequestsOnSigterm() async throws {
        let fixture = try await SearchFixture.shared.value
        let port = ChildProcess.freePort()
        let api = try ChildProcess(ChildProcess.product("order-search-api"), environment: [
            "ELASTICSEARCH_URL": try TestEnvironment.elasticsearchURL, "ORDERS_INDEX": fixture.indexer.alias,
            "SEARCH_API_ADDR": "127.0.0.1:\(port)", "LOG_LEVEL": "critical",
        ])
        let http = TestHTTP(base: "http://127.0.0.1:\(port)", bearer: try await TestEnvironment.token([.staff]))
        #expect(await eventually { (try? await http.get("/health").status) == 200 })
        let token = ConsistencyToken(aggregateType: .order, aggregateID: "ord_seed_001", version: 999, customerID: "cus_seed_b")
        let header = try TestEnvironment.signer.sign(token.payload, for: .consistency)
        let waiting = Task { try await http.get("/search/orders?size=1", headers: [("Consistency-Token", header), ("Consistency-Wait", "3000")]) }
        try await Task.sleep(for: .milliseconds(700))
        let status = await api.stop(within: .seconds(10))
        let reply = try await waiting.value
        #expect(reply.status == 200)
        #expect(reply.header("read-model-caught-up") == "false")
        #expect(status == 0)
    }

    /// Guarantee 7 for the write API: SIGTERM, then exit 0 promptly.
    @Test func theWriteAPIExitsZeroOnSigterm() async throws {
        try await TestDatabase.with(poolSize: 2) { database in
            let port = ChildProcess.freePort()
            let api = try ChildProcess(ChildProcess.product("order-write-api"), environment: [
                "DATABASE_URL": database.url, "WRITE_API_ADDR": "127.0.0.1:\(port)", "LOG_LEVEL": "critical",
            ])
            let http = TestHTTP(base: "http://127.0.0.1:\(port)", bearer: try await TestEnvironment.token([.staff]))
            #expect(await eventually { (try? await http.get("/health").status) == 200 })
            #expect(try await http.post("/customers", json(["name": "A", "email": "sigterm@example.com", "country": "DE"])).status == 201)
            #expect(await api.stop(within: .seconds(10)) == 0)
        }
    }
}

extension TestDatabase {
    /// Terminates every other session on `database` (as a PostgreSQL restart would); returns how many.
    static func terminateSessions(of database: TestDatabase) async throws -> Int {
        let name = String(database.url.split(separator: "/").last!.split(separator: "?").first!)
        let admin = try LibPQConnection(connectionString: try TestEnvironment.databaseURL)
        return try admin.query(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [name]
        ).first?.int(0) ?? 0
    }
}
