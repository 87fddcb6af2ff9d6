import ElasticsearchClient
import LibPQClient
import Logging
import Synchronization

/// Samples every second what the soak promises to keep bounded: the age of the oldest
/// transaction of the indexers and admin commands in PostgreSQL, the indexers' memory,
/// and, for a sample of orders, that their search document's version never decreases.
final class SoakProbe: Sendable {
    struct Readings: Sendable {
        var maxTransactionAge = 0.0
        /// Per indexer process, after a 30 s warm-up: (seconds since it was first seen, RSS in MB).
        var rss: [Int32: [(Double, Double)]] = [:]
        var backwards = 0
        var lastVersions: [String: Int64] = [:]

        /// Growth of the indexers' memory: for each process observed at least two minutes after
        /// its warm-up, the highest RSS in the second half of that time over the highest in the
        /// first half (a leak keeps climbing; a working set that has settled does not). The largest.
        var rssGrowth: Double { worstRSS?.growth ?? 1 }

        /// The process whose memory grew most: its peaks in MB before and after the middle of its life, and how long it was observed.
        var worstRSS: (growth: Double, earlyMB: Double, lateMB: Double, seconds: Double)? { worst { $0.max() ?? 0 } }

        /// The same with each half's median instead of its peak: a one-off peak (a rebuild's large
        /// pages) moves the peaks, a leak moves the medians too.
        var worstMedianRSS: (growth: Double, earlyMB: Double, lateMB: Double, seconds: Double)? {
            worst { values in values.sorted()[values.count / 2] }
        }

        private func worst(_ summary: ([Double]) -> Double) -> (growth: Double, earlyMB: Double, lateMB: Double, seconds: Double)? {
            rss.values.compactMap { samples -> (growth: Double, earlyMB: Double, lateMB: Double, seconds: Double)? in
                guard let first = samples.first?.0, let last = samples.last?.0, last - first >= 120 else { return nil }
                let middle = (first + last) / 2
                let early = summary(samples.filter { $0.0 <= middle }.map(\.1))
                let late = summary(samples.filter { $0.0 > middle }.map(\.1))
                return (late / max(early, 0.001), early, late, last - first)
            }.max { $0.growth < $1.growth }
        }
    }

    let stack: SoakStack
    let pool: PostgresPool
    let load: SoakLoad
    let logger: Logger
    private let readings = Mutex(Readings())
    private let firstSeen = Mutex<[Int32: ContinuousClock.Instant]>([:])

    init(stack: SoakStack, pool: PostgresPool, load: SoakLoad, logger: Logger) {
        self.stack = stack
        self.pool = pool
        self.load = load
        self.logger = logger
    }

    var result: Readings { readings.withLock { $0 } }

    static let oldestTransaction = """
        SELECT COALESCE(max(extract(epoch FROM clock_timestamp() - xact_start)), 0)::float8 FROM pg_stat_activity
        WHERE datname = current_database() AND application_name IN ('order-indexer', 'order-admin') AND xact_start IS NOT NULL
        """

    func run(until deadline: ContinuousClock.Instant) async {
        let client = ElasticsearchClient(configuration: .init(baseURL: stack.osmemURL))
        var tick = 0
        while ContinuousClock.now < deadline, !Task.isCancelled {
            tick += 1
            if let age = try? await pool.query(Self.oldestTransaction).first?.string(0).flatMap(Double.init) {
                readings.withLock { $0.maxTransactionAge = max($0.maxTransactionAge, age) }
            }
            sampleMemory()
            if tick % 5 == 0 { await checkVersions(client) }
            try? await Task.sleep(for: .seconds(1))
        }
        await client.shutdown()
    }

    private func sampleMemory() {
        let now = ContinuousClock.now
        for (pid, megabytes) in stack.indexerRSS where megabytes > 0 {
            let born = firstSeen.withLock { seen -> ContinuousClock.Instant in
                if let born = seen[pid] { return born }
                seen[pid] = now
                return now
            }
            guard now - born >= .seconds(30) else { continue }
            readings.withLock { $0.rss[pid, default: []].append(((now - born).seconds, megabytes)) }
        }
    }

    /// A document missing (osmem came back empty) is not backwards; a lower version is.
    private func checkVersions(_ client: ElasticsearchClient) async {
        for id in load.sampleOrders(50) {
            guard let version = try? await client.get(stack.alias, id: id)?.version else { continue }
            readings.withLock { state in
                if let last = state.lastVersions[id], version < last {
                    state.backwards += 1
                    logger.error("a search document went backwards", metadata: ["order.id": "\(id)"])
                }
                state.lastVersions[id] = version
            }
        }
    }
}
