import LibPQClient

/// `server-updates`: how the search server's indexing speed changes as updates pile up.
///
/// Not a target of ours: it explains the long soaks. Every document is posted (1000 per request,
/// one connection) into a fresh osmem-server, then posted again `rounds` times, each round a newer
/// version of every document: with a new, unique tracking number (as a shipment brings), or with
/// the same content (`changeContent` false). Elasticsearch merges segments in the background; a
/// server that keeps what it replaced gets slower round by round.
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
            return report
        }
    }
}
