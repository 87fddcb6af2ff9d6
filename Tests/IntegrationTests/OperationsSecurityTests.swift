import ElasticsearchClient
import Foundation
import OrderIndexer
import OrderStore
import LibPQClient
import Security
import ServiceSupport
import Testing
import ServiceTesting

/// Start-up refusal, the indexer's `/metrics` behind a token, dead-letter retention.
@Suite struct OperationsSecurityTests {
    /// Runs a built executable with extra environment; returns its exit status and standard error.
    static func run(_ product: String, environment: [String: String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = ChildProcess.product(product)
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let stderr = Pipe()
        process.standardError = stderr
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let output = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    @Test(arguments: ["order-write-api", "order-search-api", "order-indexer"])
    func refusesToStartWithoutAKeyAndNamesTheVariables(product: String) throws {
        let (status, stderr) = try Self.run(product, environment: [
            "AUTH_JWT_SECRET": "", "AUTH_JWKS_FILE": "", "AUTH_DISABLED": "",
            "WRITE_API_ADDR": "127.0.0.1:\(ChildProcess.freePort())", "SEARCH_API_ADDR": "127.0.0.1:\(ChildProcess.freePort())",
            "INDEXER_METRICS_ADDR": "127.0.0.1:\(ChildProcess.freePort())", "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        ])
        #expect(status == 1)
        #expect(stderr.contains("AUTH_JWT_SECRET") && stderr.contains("AUTH_JWKS_FILE") && stderr.contains("AUTH_DISABLED"))
    }

    @Test(arguments: ["order-write-api", "order-search-api"])
    func apisRefuseToStartWithoutASigningKey(product: String) throws {
        let (status, stderr) = try Self.run(product, environment: [
            "SIGNING_KEY": "too-short", "WRITE_API_ADDR": "127.0.0.1:\(ChildProcess.freePort())",
            "SEARCH_API_ADDR": "127.0.0.1:\(ChildProcess.freePort())",
        ])
        #expect(status == 1)
        #expect(stderr.contains("SIGNING_KEY"))
        #expect(!stderr.contains("too-short"))
    }

    @Test func indexerMetricsNeedAMetricsOrStaffToken() async throws {
        try await TestDatabase.with(poolSize: 2) { database in
            try await withScoped({ ElasticsearchClient(configuration: .init(baseURL: try TestEnvironment.elasticsearchURL)) }, stop: { await $0.shutdown() }) { client in
                let auth = try await TestEnvironment.authMode()
                let (port, task) = try await startServer { onRunning in
                    buildIndexerMetricsApplication(pool: database.pool, client: client, alias: "orders", auth: auth, address: HostAndPort(host: "127.0.0.1", port: 0),
                                                   logger: TestEnvironment.logger, onServerRunning: onRunning)
                }
                defer { task.cancel() }
                let http = TestHTTP(base: "http://127.0.0.1:\(port)")
                #expect(try await http.get("/health").status == 200)
                #expect(try await http.get("/ready").status == 200)
                let anonymous = try await http.get("/metrics")
                expectProblem(anonymous, 401)
                #expect(anonymous.header("www-authenticate") == "Bearer")
                expectProblem(try await http.with(bearer: try await TestEnvironment.token([.customer], customerID: "cus_1")).get("/metrics"), 403)
                expectProblem(try await http.with(bearer: try await TestEnvironment.token([.fulfilment])).get("/metrics"), 403)
                #expect(try await http.with(bearer: try await TestEnvironment.token([.metrics])).get("/metrics").status == 200)
                #expect(try await http.with(bearer: try await TestEnvironment.token([.staff])).get("/metrics").status == 200)
            }
        }
    }

    @Test func deadLettersArePurgedAfterTheRetention() async throws {
        try await TestDatabase.with() { database in
            for (id, age) in [("ord_old1", "40 days"), ("ord_old2", "31 days"), ("ord_new", "2 days")] {
                try await database.pool.query("""
                    INSERT INTO dead_letters (aggregate_type, aggregate_id, aggregate_version, event_type, payload, occurred_at, error_status, failed_at)
                    VALUES ('order', $1, 1, 'OrderPlaced', '{}', now(), 400, now() - $2::interval)
                    """, [id, age])
            }
            #expect(try await DeadLetters(pool: database.pool).purge(olderThanSeconds: 30 * 86_400) == 2)
            #expect(try await database.pool.query("SELECT aggregate_id FROM dead_letters").map { $0.string(0)! } == ["ord_new"])
            #expect(try await DeadLetters(pool: database.pool).purge(olderThanSeconds: 30 * 86_400) == 0)
        }
    }
}
