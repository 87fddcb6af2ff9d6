import ElasticsearchClient
import FaultProxy
import Foundation
import Logging
import Synchronization

/// The processes a soak runs and breaks: osmem-server on a fixed port behind a fault
/// proxy (the indexers' way to it), the write API, and `indexers` order-indexer processes.
/// PostgreSQL is restarted by the command `scripts/soak` hands over.
final class SoakStack: Sendable {
    let env: BenchEnvironment
    let databaseURL: String
    let alias = "orders"
    let osmemPort = freePort()
    let writeAPIPort = freePort()
    let proxy: FaultProxy
    let proxyPort: Int
    let indexerCount: Int
    private let osmem = Mutex<Child?>(nil)
    private let indexers: Mutex<[Child?]>
    private let writeAPI = Mutex<Child?>(nil)
    let logger: Logger

    init(env: BenchEnvironment, databaseURL: String, indexers: Int, logger: Logger) async throws {
        self.env = env
        self.databaseURL = databaseURL
        self.indexerCount = indexers
        self.indexers = Mutex(Array(repeating: nil, count: indexers))
        self.logger = logger
        proxy = FaultProxy(upstream: "http://127.0.0.1:\(osmemPort)", logger: logger)
        proxyPort = try await proxy.start()
    }

    var osmemURL: String { "http://127.0.0.1:\(osmemPort)" }
    var writeAPIURL: String { "http://127.0.0.1:\(writeAPIPort)" }

    func start() async throws {
        try await startOsmem()
        let api = try env.launch("order-write-api", environment: [
            "DATABASE_URL": databaseURL, "WRITE_API_ADDR": "127.0.0.1:\(writeAPIPort)", "LOG_LEVEL": "error",
        ])
        writeAPI.withLock { $0 = api }
        try await waitForHTTP("\(writeAPIURL)/health")
        for slot in 0..<indexerCount { try startIndexer(slot) }
    }

    func startOsmem() async throws {
        let child = try await env.startOsmem(port: osmemPort)
        osmem.withLock { $0 = child }
    }

    /// Stops osmem-server; it comes back empty (it keeps nothing on disk).
    func stopOsmem() async {
        let child = osmem.withLock { state -> Child? in defer { state = nil }; return state }
        _ = await child?.stop(signal: SIGKILL, within: .seconds(5))
    }

    /// `SOAK_INDEXER_LOG_LEVEL` (default `error`): `info` shows how a soak's indexers sized and
    /// handed back their batches (each indexer's output is kept in the temporary directory until it
    /// is restarted).
    static let indexerLogLevel = ProcessInfo.processInfo.environment["SOAK_INDEXER_LOG_LEVEL"] ?? "error"

    func startIndexer(_ slot: Int) throws {
        let child = try env.launch("order-indexer", environment: [
            "DATABASE_URL": databaseURL, "ELASTICSEARCH_URL": "http://127.0.0.1:\(proxyPort)", "ORDERS_INDEX": alias,
            "INDEXER_METRICS_ADDR": "127.0.0.1:\(freePort())", "LOG_LEVEL": Self.indexerLogLevel,
        ], outputPath: indexerOutputPath(slot))
        indexers.withLock { $0[slot] = child }
    }

    /// Signals indexer `slot` and waits for its exit (12 s at most); its exit status.
    func stopIndexer(_ slot: Int, signal: Int32) async -> Int32? {
        let child = indexers.withLock { state -> Child? in defer { state[slot] = nil }; return state[slot] }
        return await child?.stop(signal: signal, within: .seconds(12))
    }

    /// Resident set sizes of the running indexers, by pid.
    var indexerRSS: [(pid: Int32, megabytes: Double)] {
        indexers.withLock { $0.compactMap { $0.map { ($0.pid, $0.rssMegabytes) } } }
    }

    /// Where indexer `slot`'s output goes (errors only), started afresh with each process.
    func indexerOutputPath(_ slot: Int) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("order-bench-indexer-\(getpid())-\(slot).log").path
    }

    func stopAll() async {
        for slot in 0..<indexerCount {
            _ = await stopIndexer(slot, signal: SIGTERM)
            try? FileManager.default.removeItem(atPath: indexerOutputPath(slot))
        }
        _ = await writeAPI.withLock { $0 }?.stop(signal: SIGTERM, within: .seconds(12))
        await stopOsmem()
        await proxy.stop()
    }
}
