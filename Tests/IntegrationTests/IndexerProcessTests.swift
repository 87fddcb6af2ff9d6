import ElasticsearchClient
import FaultProxy
import Foundation
import Testing
import ServiceTesting

/// Guarantees that need a real process boundary.
@Suite struct IndexerProcessTests {
    /// SIGKILL of the indexer while a batch waits for Elasticsearch: its leases lapse and another indexer takes the events over.
    @Test func sigkillMidBatchLosesNothing() async throws {
        try await IndexerHarness.with() { h in
            let customer = try await h.api.createCustomer()
            _ = try await h.api.placeOrders(60, customerID: customer)
            let proxy = FaultProxy(upstream: h.elasticsearchURL, logger: TestEnvironment.logger)
            let port = try await proxy.start()
            proxy.setPersistent(.delay(.seconds(3)))
            let indexer = try h.startIndexerProcess(elasticsearchURL: "http://127.0.0.1:\(port)", settings: ["INDEXER_BATCH_SIZE": "25", "INDEXER_LEASE_MS": "2000"])
            // Wait until a worker holds leased events while Elasticsearch is slow.
            let leased = "SELECT count(*) FROM outbox WHERE lease_owner IS NOT NULL"
            #expect(await eventually(timeout: .seconds(30)) { (try? await h.database.count(leased)) ?? 0 > 0 })
            indexer.kill()
            #expect(try await h.database.count(leased) > 0)  // killed holding events: they stay until acknowledged
            proxy.setPersistent(nil)
            let survivor = try h.startIndexer()
            #expect(await eventually(timeout: .seconds(60)) { await h.inSync() })
            #expect(await eventually { (try? await h.outboxCount()) == 0 })
            await survivor.stop()
            await proxy.stop()
        }
    }

    /// The search server goes down (the write side keeps accepting), comes back
    /// empty, and the indexer rebuilds everything from PostgreSQL on its own.
    @Test func searchServerDownThenBackEmpty() async throws {
        let port = ChildProcess.freePort()
        // -parent-pid: osmem exits by itself should the test process die first.
        let arguments = ["-addr", "127.0.0.1:\(port)", "-no-stdin-watch", "-no-ja", "-parent-pid", String(getpid())]
        let first = try ChildProcess(ChildProcess.osmem, arguments: arguments)
        let second = Locked<ChildProcess?>(nil)
        try await withScoped({ first }, stop: { $0.kill(); second.value?.kill() }) { first in
            try await IndexerHarness.with(elasticsearchURL: "http://127.0.0.1:\(port)") { h in
                #expect(await eventually { await h.elasticsearch.ping("orders") })
                let indexer = try h.startIndexer()
                let customer = try await h.api.createCustomer()
                _ = try await h.api.placeOrders(20, customerID: customer)
                #expect(await eventually { await h.inSync() })

                first.kill()
                let during = try await h.api.placeOrders(10, customerID: customer)  // guarantee 4
                #expect(during.count == 10)
                try await Task.sleep(for: .seconds(1))
                let restarted = try ChildProcess(ChildProcess.osmem, arguments: arguments)
                second.update { $0 = restarted }
                #expect(await eventually(timeout: .seconds(60)) { await h.inSync() })
                #expect(try await h.expectedVersions().count == 30)
                await indexer.stop()
            }
        }
    }
}
