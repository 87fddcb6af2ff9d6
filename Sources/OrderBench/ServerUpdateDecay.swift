import ElasticsearchClient
import LibPQClient
import ReadModel

/// `server-updates`: how the search server's indexing speed changes as updates pile up.
///
/// Not a target of ours: it explains the long soaks. Every document is posted (1000 per request,
/// one connection) into a fresh osmem-server, then posted again `rounds` times, each round a newer
/// version of every document: with a new, unique tracking number (as a shipment brings), or with
/// the same content (`changeContent` false). Elasticsearch merges segments in the background; a
/// server that keeps what it replaced gets slower round by round. Then updates of orders chosen
/// at random, 1, 10, 100 and 1000 to a request: what a request costs when it touches the whole
/// index rather than its newest part.
struct ServerUpdateDecay {
    let benchmarks: IndexBenchmarks

    func run(rounds: Int, changeContent: Bool) async throws -> BenchReport {
        try await benchmarks.env.withFreshDatabase("bench_server_updates") { _, pool in
            try await DataSet(orders: benchmarks.orders).load(into: pool, outbox: false)
            let osmem = try await benchmarks.env.startOsmem()
            defer { osmem.stop() }
            try await benchmarks.createAlias(osmem.url)
            var report = BenchReport("server-updates")
            report.add("orders", benchmarks.orders)
            report.add("content", changeContent ? "new tracking number per round" : "unchanged")
            var rates: [Double] = []
            for round in 0...rounds {
                if round > 0, changeContent {
                    try await pool.query("UPDATE orders SET tracking_number = $1 || md5(id || $1)", ["TRK\(round)-"])
                }
                let bodies = try await RawBulkShapes.bodies(pool: pool, documentsPerRequest: 1000, versionBump: round)
                let seconds = try await benchmarks.postRaw(bodies, to: osmem.url, concurrency: 1)
                rates.append(Double(benchmarks.orders) / seconds)
                report.add(round == 0 ? "insert_docs_per_s" : "update_round_\(round)_docs_per_s", rates[round], digits: 0)
                benchmarks.logger.info("server updates", metadata: ["bench.round": "\(round)", "bench.docs_per_s": "\(Int(rates[round]))"])
            }
            report.add("last_round_vs_insert", rates[rounds] / rates[0])
            for probe in try await randomUpdates(pool: pool, url: osmem.url, newerThan: rounds) {
                report.add("random_updates_\(probe.size)_s_per_request", probe.secondsPerRequest, digits: 3)
                report.add("random_updates_\(probe.size)_docs_per_s", Double(probe.size) / probe.secondsPerRequest, digits: 0)
            }
            return report
        }
    }

    /// Updates of orders chosen at random, `size` to a request, as a live load sends them (the rounds
    /// above update in id order). Each size is posted `samples` times, one request at a time, and
    /// timed as a whole: a request that waits for the server to rework its index is in the mean.
    private func randomUpdates(pool: PostgresPool, url: String, newerThan rounds: Int) async throws
        -> [(size: Int, secondsPerRequest: Double)] {
        var results: [(size: Int, secondsPerRequest: Double)] = []
        var bump = rounds
        for (size, samples) in [(1, 20), (10, 5), (100, 5), (1000, 2)] {
            let bodies = try await Self.randomUpdateBodies(pool: pool, size: size, samples: samples, newerThan: bump)
            bump += samples
            let seconds = try await benchmarks.postRaw(bodies, to: url, concurrency: 1)
            results.append((size, seconds / Double(samples)))
            benchmarks.logger.info("random updates", metadata: ["bench.size": "\(size)", "bench.s_per_request": "\(seconds / Double(samples))"])
        }
        return results
    }

    /// `samples` requests of `size` orders chosen at random, each a newer version than `bump`
    /// versions above the stored one (one more per request).
    static func randomUpdateBodies(pool: PostgresPool, size: Int, samples: Int, newerThan bump: Int) async throws -> [[UInt8]] {
        var bodies: [[UInt8]] = []
        for sample in 1...samples {
            let ids = try await pool.query("SELECT id FROM orders ORDER BY random() LIMIT $1", [size]).compactMap { $0.string(0) }
            let documents = try await pool.withConnection { try OrderDocumentSource.documents(ids: ids, on: $0) }
            var request = BulkRequest()
            for d in documents {
                request.index(IndexBenchmarks.alias, id: d.orderID, version: d.externalVersion + Int64(bump + sample), requireAlias: true) {
                    d.writeJSON(into: &$0)
                }
            }
            bodies.append(request.body.bytes)
        }
        return bodies
    }
}
