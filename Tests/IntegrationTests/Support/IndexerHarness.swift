import Testing
import ElasticsearchClient
import FaultProxy
import Foundation
import JSONSupport
import OrderIndexer
import OrderStore
import LibPQClient
import ReadModel
import ServiceLifecycle
import ServiceTesting

/// A write API, a database, and indexers running in-process against the real
/// osmem-server (optionally through a fault proxy), with a per-test alias.
struct IndexerHarness {
    let api: WriteAPIHarness
    let alias: String
    /// A client that talks to osmem directly (for assertions).
    let elasticsearch: ElasticsearchClient

    let elasticsearchURL: String

    static func start(elasticsearchURL: String? = nil) async throws -> IndexerHarness {
        let api = try await WriteAPIHarness.start()
        let url = try elasticsearchURL ?? TestEnvironment.elasticsearchURL
        let elasticsearch = ElasticsearchClient(configuration: .init(baseURL: url))
        return IndexerHarness(api: api, alias: TestEnvironment.uniqueName("orders_t"), elasticsearch: elasticsearch, elasticsearchURL: url)
    }

    var database: TestDatabase { api.database }

    /// An `order-indexer` process on this harness's database and alias (for SIGKILL and SIGTERM),
    /// talking to `elasticsearchURL`; `settings` are more `INDEXER_*` variables.
    func startIndexerProcess(elasticsearchURL: String, settings: [String: String] = [:]) throws -> ChildProcess {
        try ChildProcess(ChildProcess.product("order-indexer"), environment: [
            "DATABASE_URL": database.url, "ELASTICSEARCH_URL": elasticsearchURL, "ORDERS_INDEX": alias,
            "INDEXER_METRICS_ADDR": "127.0.0.1:\(ChildProcess.freePort())", "LOG_LEVEL": "critical",
        ].merging(settings) { $1 })
    }

    /// An `order-admin` process on this harness's database and alias (for signals), its output
    /// discarded unless `TEST_CHILD_LOG` is set.
    func startAdminProcess(_ arguments: [String], elasticsearchURL: String) throws -> ChildProcess {
        try ChildProcess(ChildProcess.product("order-admin"), arguments: arguments, environment: [
            "DATABASE_URL": database.url, "ELASTICSEARCH_URL": elasticsearchURL, "ORDERS_INDEX": alias, "LOG_LEVEL": "critical",
        ])
    }

    /// Runs `body` with a fault proxy in front of this harness's osmem-server and the proxy's URL;
    /// stops the proxy afterwards, also when `body` throws.
    func withFaultProxy<T>(_ body: (FaultProxy, String) async throws -> T) async throws -> T {
        try await withScoped({ FaultProxy(upstream: elasticsearchURL, logger: TestEnvironment.logger) }, stop: { await $0.stop() }) { proxy in
            let port = try await proxy.start()
            return try await body(proxy, "http://127.0.0.1:\(port)")
        }
    }

    /// The `application_name` of in-process indexers' sessions (to find them in `pg_stat_activity`).
    static let indexerApplicationName = "order-indexer"

    /// Starts an indexer (its own pool and client) and returns a handle to stop it.
    func startIndexer(elasticsearchURL: String? = nil, workers: Int = 2, batchSize: Int = 500, requestTimeout: Duration? = nil,
                      configure: (inout IndexerService.Configuration) -> Void = { _ in }) throws -> RunningIndexer {
        var configuration = IndexerService.Configuration()
        configuration.workers = workers
        configuration.processor.batchSize = batchSize
        configuration.aliasCheckInterval = .milliseconds(500)
        configure(&configuration)
        let pool = PostgresPool(configuration: .init(connectionString: database.url, size: workers + 3, applicationName: Self.indexerApplicationName,
                                                     session: configuration.session), logger: TestEnvironment.logger)
        var clientConfiguration = ElasticsearchClient.Configuration(baseURL: elasticsearchURL ?? self.elasticsearchURL)
        if let requestTimeout { clientConfiguration.requestTimeout = requestTimeout }
        let client = ElasticsearchClient(configuration: clientConfiguration)
        let service = IndexerService(pool: pool, client: client, layout: IndexLayout(alias: alias), databaseURL: database.url,
                                     configuration: configuration, logger: TestEnvironment.logger)
        let task = Task { try await service.run() }
        return RunningIndexer(task: task, pool: pool, client: client)
    }

    struct RunningIndexer {
        let task: Task<Void, any Error>
        let pool: PostgresPool
        let client: ElasticsearchClient

        func stop() async {
            task.cancel()
            _ = await task.result
            await client.shutdown()
            await pool.shutdown()
        }
    }

    func stop() async {
        try? await deleteIndices()
        await elasticsearch.shutdown()
        await api.stop()
    }

    func deleteIndices() async throws {
        for index in try await elasticsearch.aliasTargets(alias) { try await elasticsearch.deleteIndex(index) }
    }

    /// (order id, version, customer version) of every order in PostgreSQL.
    func expectedVersions() async throws -> [String: (Int, Int)] {
        var result: [String: (Int, Int)] = [:]
        for row in try await database.pool.query("SELECT o.id, o.version, c.version FROM orders o JOIN customers c ON c.id = o.customer_id") {
            result[row.string(0)!] = (row.int(1)!, row.int(2)!)
        }
        return result
    }

    /// (version, customer version) of every document in the index (through the alias).
    func indexedVersions() async throws -> [String: (Int, Int)] {
        var result: [String: (Int, Int)] = [:]
        var searchAfter: JSONValue?
        while true {
            var body: JSONObject = JSONObject([
                ("size", 1000), ("sort", [["order_id": "asc"]]), ("_source", ["order_id", "version", "customer.version"]),
                ("query", ["match_all": [:]]),
            ])
            if let searchAfter { body["search_after"] = searchAfter }
            let page = try await elasticsearch.search(alias, body: JSONValue.object(body).serializedBytes)
            let hits = page["hits"]?["hits"]?.arrayValue ?? []
            for hit in hits {
                let source = hit["_source"]!
                result[source["order_id"]!.stringValue!] = (source["version"]!.intValue!, source["customer"]!["version"]!.intValue!)
            }
            guard hits.count == 1000, let sort = hits.last?["sort"] else { break }
            searchAfter = sort
        }
        return result
    }

    /// True when the index holds exactly PostgreSQL's orders at exactly their versions.
    func inSync() async -> Bool {
        guard let expected = try? await expectedVersions(), let indexed = try? await indexedVersions() else { return false }
        return expected.count == indexed.count && expected.allSatisfy { id, v in indexed[id].map { $0 == v } ?? false }
    }

    func outboxCount() async throws -> Int { try await database.count("SELECT count(*) FROM outbox") }
}

/// Polls `condition` until it holds or `timeout` passes.
func eventually(timeout: Duration = .seconds(30), every interval: Duration = .milliseconds(100), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: interval)
    }
    return try await condition()
}

extension WriteAPIHarness {
    /// Places `count` orders for a customer through the application service (fast, same code path as the API).
    func placeOrders(_ count: Int, customerID: String) async throws -> [String] {
        var ids: [String] = []
        for i in 0..<count {
            let reply = try await placeOrder(customerID: customerID, items: [("SKU-\(i % 7)", "Item \(i % 7)", 1 + i % 3, "\(10 + i % 90).50")])
            guard let id = reply.json["id"]?.stringValue else { throw HarnessError.unexpected(reply.status, reply.text) }
            ids.append(id)
        }
        return ids
    }
}

extension IndexerHarness {
    /// Runs `body` with a fresh harness and stops it afterwards, also when `body` throws.
    static func with(elasticsearchURL: String? = nil, _ body: (IndexerHarness) async throws -> Void) async throws {
        try await withScoped({ try await start(elasticsearchURL: elasticsearchURL) }, stop: { await $0.stop() }, body)
    }
}

extension IndexerHarness {
    /// A fresh harness with an indexer running and a search API in front of its index;
    /// `body` gets the search API's base URL. Everything is stopped afterwards, also when `body` throws.
    static func withIndexerAndSearch(_ body: (IndexerHarness, String) async throws -> Void) async throws {
        try await with { h in
            try await withScoped({ try h.startIndexer() }, stop: { await $0.stop() }) { _ in
                let client = ElasticsearchClient(configuration: .init(baseURL: h.elasticsearchURL))
                try await withScoped({ try await startSearchAPI(client: client, alias: h.alias) },
                                     stop: { $0.1.cancel(); await client.shutdown() }) { server in
                    try await body(h, "http://127.0.0.1:\(server.0)")
                }
            }
        }
    }
}
