import ElasticsearchClient
import FaultProxy
import Foundation
import JSONSupport
import OrderStore
import LibPQClient
import ReadModel
import ServiceSupport
import ServiceTesting
import Testing

/// The read side's guarantees 1–5, against real PostgreSQL and osmem-server.
@Suite struct IndexerTests {
    @Test func indexesEveryCommandWithExactVersions() async throws {
        try await IndexerHarness.with() { h in
            let indexer = try h.startIndexer()
            let customer = try await h.api.createCustomer(name: "Zoë Müller")
            let ids = try await h.api.placeOrders(5, customerID: customer)
            let paid = try await h.api.client.post("/orders/\(ids[0])/pay", json(["payment_reference": "p", "amount": "10.50"]))
            #expect(paid.status == 200)
            _ = try await h.api.client.post("/orders/\(ids[1])/cancel", json(["reason": "r"]))
            #expect(await eventually { await h.inSync() })
            let document = try #require(try await h.elasticsearch.get(h.alias, id: ids[0]))
            #expect(document.source["status"]?.stringValue == "paid")
            #expect(document.source["version"]?.intValue == 2)
            #expect(document.version == (2 << 32 | 1))
            #expect(document.source["customer"]?["name"]?.stringValue == "Zoë Müller")
            #expect(document.source["total"]?.stringValue == "10.50")
            #expect(document.source["items"]?[0]?["sku"]?.stringValue == "SKU-0")
            #expect(await eventually { (try? await h.outboxCount()) == 0 })
            let metrics = Observability.registry.emitToString()
            for name in ["indexer_events_total", "indexer_documents_indexed_total", "indexer_bulk_duration_seconds_bucket",
                         "indexer_commit_to_ack_seconds_bucket", "indexer_outbox_backlog", "indexer_lag_seconds"] {
                #expect(metrics.contains(name), "\(name)")
            }
            await indexer.stop()
        }
    }

    /// Guarantee 1: a transaction that commits after later-numbered ones is still indexed.
    @Test func lateCommittingTransactionIsNotSkipped() async throws {
        try await IndexerHarness.with() { h in
            let customer = try await h.api.createCustomer()
            let indexer = try h.startIndexer()
            // Hold a transaction open that wrote an order and its outbox event.
            let held = try LibPQConnection(connectionString: h.database.url)
            try held.execute("BEGIN")
            try held.query("""
                INSERT INTO orders (id, version, status, customer_id, currency, total, ship_line1, ship_city, ship_postal_code, ship_country, created_at, updated_at)
                VALUES ('ord_held', 1, 'pending', $1, 'EUR', 5.00, 'x', 'Oslo', '1', 'NO', now(), now())
                """, [customer])
            try held.query("INSERT INTO order_items VALUES ('ord_held', 0, 'H-1', 'Held item', 1, 5.00)")
            try held.query("""
                INSERT INTO outbox (aggregate_type, aggregate_id, aggregate_version, event_type, payload, occurred_at)
                VALUES ('order', 'ord_held', 1, 'OrderPlaced', '{}', now())
                """)
            // Later transactions commit and get indexed first.
            let later = try await h.api.placeOrders(5, customerID: customer)
            #expect(await eventually { (try? await h.elasticsearch.count(h.alias)) == 5 })
            #expect(try await h.elasticsearch.get(h.alias, id: later[4]) != nil)
            try held.execute("COMMIT")
            #expect(await eventually { await h.inSync() })
            #expect(try await h.elasticsearch.get(h.alias, id: "ord_held")?.source["items"]?[0]?["name"]?.stringValue == "Held item")
            await indexer.stop()
        }
    }

    /// Guarantee 2: duplicates and late stale events never replace a newer document.
    @Test func duplicateAndStaleEventsNeverGoBackwards() async throws {
        try await IndexerHarness.with() { h in
            let indexer = try h.startIndexer()
            let customer = try await h.api.createCustomer()
            let id = try #require(try await h.api.placeOrder(customerID: customer).json["id"]?.stringValue)
            _ = try await h.api.client.post("/orders/\(id)/pay", json(["payment_reference": "p", "amount": "59.97"]))
            _ = try await h.api.client.post("/orders/\(id)/ship", json(["carrier": "UPS", "tracking_number": "1Z999"]))
            #expect(await eventually { (try? await h.elasticsearch.get(h.alias, id: id))?.source["version"]?.intValue == 3 })
            // Deliver the same events again (at-least-once).
            try await h.database.pool.query("""
                INSERT INTO outbox (aggregate_type, aggregate_id, aggregate_version, event_type, payload, occurred_at)
                SELECT 'order', $1, v, 'OrderPlaced', '{}', now() FROM generate_series(1, 3) v
                """, [id])
            #expect(await eventually { (try? await h.outboxCount()) == 0 })
            // A stale document arriving late is refused by its external version.
            let writer = BulkWriter(client: h.elasticsearch, logger: TestEnvironment.logger)
            let outcomes = try await writer.write({ _ in
                var request = BulkRequest()
                request.index(h.alias, id: id, version: DocumentVersion(order: 1, customer: 1).packed, requireAlias: true) {
                    $0.value(["order_id": .string(id), "version": 1, "status": "pending"])
                }
                return request
            }, count: 1)
            #expect(outcomes == [BulkItemOutcome.stale])
            let document = try #require(try await h.elasticsearch.get(h.alias, id: id))
            #expect(document.source["version"]?.intValue == 3)
            #expect(document.source["status"]?.stringValue == "shipped")
            #expect(document.source["tracking_number"]?.stringValue == "1Z999")
            await indexer.stop()
        }
    }

    /// A customer change reaches every order document of that customer.
    @Test func customerRenameReachesFiveHundredOrders() async throws {
        try await IndexerHarness.with() { h in
            let indexer = try h.startIndexer()
            let customer = try await h.api.createCustomer(name: "Old Name")
            _ = try await h.api.placeOrders(500, customerID: customer)
            #expect(await eventually(timeout: .seconds(60)) { (try? await h.elasticsearch.count(h.alias)) == 500 })
            let renamed = try await h.api.client.patch("/customers/\(customer)", json(["name": "New Name", "email": "renamed@example.com"]))
            #expect(renamed.status == 200)
            let query: JSONValue = ["bool": ["filter": [["term": ["customer.version": 2]], ["term": ["customer.email": "renamed@example.com"]]]]]
            #expect(await eventually(timeout: .seconds(60)) { (try? await h.elasticsearch.count(h.alias, query: query)) == 500 })
            #expect(await h.inSync())
            await indexer.stop()
        }
    }

    /// Changes of many customers with few orders, claimed behind more order events than a request
    /// holds: they share requests of about a backlog batch's documents (here 10), not one request per
    /// customer (a soak: 831 small customers' changes sent one by one, each claimed 28 times).
    @Test func smallCustomersChangesShareBulkRequests() async throws {
        try await IndexerHarness.with() { h in try await h.withFaultProxy { proxy, proxyURL in
            _ = try await IndexLayout(alias: h.alias).ensureAlias(h.elasticsearch)
            var customers: [String] = []
            for i in 0..<30 {
                let customer = try await h.api.createCustomer(name: "Small Customer \(i)")
                _ = try await h.api.placeOrders(1, customerID: customer)
                customers.append(customer)
            }
            for customer in customers {
                let renamed = try await h.api.client.patch("/customers/\(customer)", json(["name": "Renamed Customer"]))
                #expect(renamed.status == 200)
            }
            proxy.countRequests(startingWith: "POST /_bulk")
            let indexer = try h.startIndexer(elasticsearchURL: proxyURL, workers: 1, batchSize: 200) { $0.processor.backlogBatchSize = 10 }
            #expect(await eventually(timeout: .seconds(60)) { (try? await h.outboxCount()) == 0 })
            #expect(await h.inSync())
            let renamed: JSONValue = ["term": ["customer.version": 2]]
            #expect(try await h.elasticsearch.count(h.alias, query: renamed) == 30)
            // The 30 order events in one round; the 30 customers' orders in rounds of 10.
            let requests = proxy.requestCount(startingWith: "POST /_bulk")
            #expect(requests >= 4 && requests <= 6, "\(requests) bulk requests")
            await indexer.stop()
        } }
    }

    /// A cluster that takes about the same time for a request whatever its size (osmem-server's
    /// updates late in a soak; here a proxy holding every bulk request 400 ms): under a backlog the
    /// worker's requests grow, 50 documents to 100 to 200, so 1,200 events take about 11 requests
    /// where batches of 50 would take 24.
    @Test func requestsGrowUnderABacklogWhileTheClusterIndexesFasterForIt() async throws {
        try await IndexerHarness.with() { h in try await h.withFaultProxy { proxy, proxyURL in
            _ = try await IndexLayout(alias: h.alias).ensureAlias(h.elasticsearch)
            let customer = try await h.api.createCustomer(name: "Busy Customer")
            try await h.database.pool.query("DELETE FROM outbox", [])  // its creation would fan out over the orders below
            _ = try await h.api.placeOrders(1200, customerID: customer)
            proxy.inject(.delay(.milliseconds(400)), count: 100_000, onRequestsStartingWith: "POST /_bulk")
            proxy.countRequests(startingWith: "POST /_bulk")
            let indexer = try h.startIndexer(elasticsearchURL: proxyURL, workers: 1, batchSize: 50) {
                $0.processor.backlogBatchSize = 50
                $0.processor.maxBulkBytes = 4 * BulkSizing.maxRequestBytes  // room for 4x the starting size
            }
            #expect(await eventually(timeout: .seconds(90)) { (try? await h.outboxCount()) == 0 })
            #expect(await h.inSync())
            let requests = proxy.requestCount(startingWith: "POST /_bulk")
            #expect(requests >= 8 && requests <= 14, "\(requests) bulk requests")
            await indexer.stop()
        } }
    }

    /// A gateway in front of the cluster that stopped waiting (504) leaves the request under way
    /// upstream: the writer gives the batch up as a timeout on a busy cluster, not to be sent again
    /// before as long as the gateway waited. A 502 (no cluster behind the gateway) stays an error
    /// answer, to be retried soon.
    @Test func aGatewayTimeoutIsATimeoutNotAnErrorAnswer() async throws {
        try await IndexerHarness.with() { h in try await h.withFaultProxy { proxy, proxyURL in
            _ = try await IndexLayout(alias: h.alias).ensureAlias(h.elasticsearch)
            try await withScoped({ ElasticsearchClient(configuration: .init(baseURL: proxyURL)) }, stop: { await $0.shutdown() }) { client in
                let writer = BulkWriter(client: client, logger: TestEnvironment.logger)
                let request = { (version: Int64) in
                    var request = BulkRequest()
                    request.index(h.alias, id: "ord_gateway", version: version, requireAlias: true) {
                        $0.value(["order_id": "ord_gateway", "version": .number(String(version)), "status": "pending"])
                    }
                    return request
                }
                proxy.inject(.gaveUpWaiting(status: 504, after: .milliseconds(800)), onRequestsStartingWith: "POST /_bulk")
                let late = await #expect(throws: BulkWriter.GaveUp.self) {
                    try await writer.write(request(1), giveUpAt: .now)
                }
                #expect(late?.lastAttempt == .timedOut)
                #expect((late?.resendAfter ?? .zero) >= .milliseconds(800))
                // The request went on upstream and took effect.
                #expect(await eventually { (try? await h.elasticsearch.get(h.alias, id: "ord_gateway")) != nil })

                proxy.inject(.status(502), onRequestsStartingWith: "POST /_bulk")
                let quick = await #expect(throws: BulkWriter.GaveUp.self) {
                    try await writer.write(request(2), giveUpAt: .now)
                }
                #expect(quick?.lastAttempt == .errorAnswer)
                #expect(quick?.resendAfter == nil)
            }
        } }
    }

    /// The soak's fault proxy answers as a load balancer does: 504 once it stopped waiting for a
    /// slow upstream (not before its own timeout, however long the upstream stays silent), 502
    /// when there is no upstream to ask.
    @Test func theFaultProxyAnswers504WhenItStoppedWaitingAnd502WithoutUpstream() async throws {
        try await IndexerHarness.with() { h in try await h.withFaultProxy { slow, slowURL in
            _ = try await IndexLayout(alias: h.alias).ensureAlias(h.elasticsearch)
            slow.setPersistent(.delay(.seconds(3)))
            for (upstream, status) in [(slowURL, 504), ("http://127.0.0.1:\(ChildProcess.freePort())", 502)] {
                let gateway = FaultProxy(upstream: upstream, upstreamTimeout: .seconds(1), logger: TestEnvironment.logger)
                try await withScoped({ gateway }, stop: { await $0.stop() }) { gateway in
                    let port = try await gateway.start()
                    try await withScoped({ ElasticsearchClient(configuration: .init(baseURL: "http://127.0.0.1:\(port)")) },
                                         stop: { await $0.shutdown() }) { client in
                        let started = ContinuousClock.now
                        let answer = await #expect(throws: ElasticsearchError.self) { try await client.count(h.alias) }
                        #expect(answer?.status == status)
                        if status == 504 { #expect(ContinuousClock.now - started >= .seconds(1)) }
                    }
                }
            }
        } }
    }

    /// Several workers on one outbox: nothing lost, nothing going backwards.
    @Test func threeIndexersShareOneOutbox() async throws {
        try await IndexerHarness.with() { h in
            let indexers = try (0..<3).map { _ in try h.startIndexer(workers: 1, batchSize: 20) }
            let customers = try await withThrowingTaskGroup(of: String.self) { group in
                for i in 0..<4 { group.addTask { try await h.api.createCustomer(name: "Customer \(i)") } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for customer in customers {
                    group.addTask {
                        for id in try await h.api.placeOrders(40, customerID: customer) where id.hashValue % 2 == 0 {
                            _ = try await h.api.client.post("/orders/\(id)/cancel", json(["reason": "r"]))
                        }
                        _ = try await h.api.client.patch("/customers/\(customer)", json(["country": "FR"]))
                    }
                }
                try await group.waitForAll()
            }
            #expect(await eventually(timeout: .seconds(60)) { await h.inSync() })
            #expect(try await h.expectedVersions().count == 160)
            for indexer in indexers { await indexer.stop() }
        }
    }

    /// Guarantee 1 under 429 storms, 503s, dropped connections and delays; guarantee 4 meanwhile.
    @Test func survivesRejectionStormsThroughTheFaultProxy() async throws {
        try await IndexerHarness.with() { h in
            let proxy = FaultProxy(upstream: try TestEnvironment.elasticsearchURL, logger: TestEnvironment.logger)
            let port = try await proxy.start()
            let indexer = try h.startIndexer(elasticsearchURL: "http://127.0.0.1:\(port)")
            let customer = try await h.api.createCustomer()
            #expect(await eventually { (try? await h.elasticsearch.aliasTargets(h.alias).isEmpty) == false })

            proxy.setPersistent(.status(429))
            let ids = try await h.api.placeOrders(20, customerID: customer)  // the write side keeps accepting
            try await Task.sleep(for: .seconds(1))
            #expect(try await h.elasticsearch.count(h.alias) == 0)
            #expect(try await h.outboxCount() > 0)  // claimed events roll back or wait; none are dropped
            proxy.setPersistent(nil)
            proxy.setPeriodic(every: 2, .status(503))
            proxy.inject(.reset, count: 2)
            proxy.inject(.delay(.milliseconds(300)), count: 2)
            for id in ids.prefix(5) { _ = try await h.api.client.post("/orders/\(id)/cancel", json(["reason": "storm"])) }
            #expect(await eventually(timeout: .seconds(60)) { await h.inSync() })
            #expect(proxy.faultsInjected > 5)
            await indexer.stop()
            await proxy.stop()
        }
    }

    /// Guarantee 5: the index disappears (an empty cluster) and is rebuilt from PostgreSQL without an operator.
    @Test func rebuildsAVanishedIndexFromPostgres() async throws {
        try await IndexerHarness.with() { h in
            let indexer = try h.startIndexer()
            let customer = try await h.api.createCustomer()
            _ = try await h.api.placeOrders(30, customerID: customer)
            #expect(await eventually { await h.inSync() })
            let before = try await h.elasticsearch.aliasTargets(h.alias)
            try await h.deleteIndices()
            #expect(try await h.elasticsearch.aliasTargets(h.alias).isEmpty)
            #expect(await eventually { await h.inSync() })
            #expect(try await h.elasticsearch.aliasTargets(h.alias) != before)
            await indexer.stop()
        }
    }

    /// Documents Elasticsearch refuses (400) go to the dead-letter table; a retry re-queues them.
    @Test func rejectedDocumentsAreDeadLettered() async throws {
        try await IndexerHarness.with() { h in
            // An index whose strict mapping lacks our fields: every document is a 400.
            let broken = h.alias + "_v1"
            try await h.elasticsearch.createIndex(broken, body: Array(#"{"mappings":{"dynamic":"strict","properties":{"order_id":{"type":"keyword"}}}}"#.utf8))
            try await h.elasticsearch.updateAliases([.add(index: broken, alias: h.alias)])
            let indexer = try h.startIndexer()
            let customer = try await h.api.createCustomer()
            let ids = try await h.api.placeOrders(3, customerID: customer)
            // Each order event exactly once (the customer's event too when its fan-out hit the orders).
            let orderLetters = "SELECT count(*) FROM dead_letters WHERE aggregate_type = 'order' AND error_status = 400 AND aggregate_id = ANY($1::text[])"
            #expect(await eventually { (try? await h.database.count(orderLetters, [PostgresTextArray(ids)])) == 3 })
            #expect(await eventually { (try? await h.outboxCount()) == 0 })
            await indexer.stop()
            #expect(try await h.database.count(orderLetters, [PostgresTextArray(ids)]) == 3)
            let letters = try await h.database.count("SELECT count(*) FROM dead_letters")
            // Fix the index, retry the dead letters, and they arrive.
            try await h.deleteIndices()
            let requeued = try await DeadLetters(pool: h.database.pool).retry(ids: nil)
            #expect(requeued == letters)
            let second = try h.startIndexer()
            #expect(await eventually { await h.inSync() })
            #expect(try await h.database.count("SELECT count(*) FROM dead_letters") == 0)
            await second.stop()
        }
    }
}
