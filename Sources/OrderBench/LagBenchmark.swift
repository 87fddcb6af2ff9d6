import ElasticsearchClient
import Foundation
import JSONSupport
import LibPQClient
import ReadModel
import Synchronization

extension ServiceBenchmarks {
    /// `lag`: orders placed through the write API at `rate` per second for `seconds`; commit →
    /// acknowledged for every event, exactly (the indexer's `INDEXER_ACK_TIMINGS` log into an HDR
    /// histogram), and commit → searchable by polling every 10th order. Baseline: the same
    /// documents posted straight to a fresh osmem-server at the same rate by a minimal client
    /// that sends whatever arrived while its previous request was out.
    public func lag(rate: Int = 300, seconds: Int = 60, nullSink: Bool = false) async throws -> BenchReport {
        var report = BenchReport(nullSink ? "lag --null-sink" : "lag")
        let (url, pool) = try await env.freshDatabase("bench_lag")
        try await DataSet(orders: 500).load(into: pool, outbox: false)
        let osmem = try await env.startOsmem()
        let client = ElasticsearchClient(configuration: .init(baseURL: osmem.url))
        _ = try await IndexLayout(alias: "orders").ensureAlias(client)
        let sink = nullSink ? try await NullSink.start(alias: "orders", logger: logger) : nil
        let timings = FileManager.default.temporaryDirectory.appendingPathComponent("order-bench-ack-\(getpid()).txt").path
        try? FileManager.default.removeItem(atPath: timings)
        let roundTrip = try await Self.idleRoundTrips(pool)
        let metricsPort = freePort(), apiPort = freePort()
        let indexer = try env.launch("order-indexer", environment: [
            "DATABASE_URL": url, "ELASTICSEARCH_URL": sink.map { "http://127.0.0.1:\($0.port)" } ?? osmem.url, "ORDERS_INDEX": "orders",
            "INDEXER_METRICS_ADDR": "127.0.0.1:\(metricsPort)", "INDEXER_ACK_TIMINGS": timings, "LOG_LEVEL": "error",
        ])
        let api = try env.launch("order-write-api", environment: ["DATABASE_URL": url, "WRITE_API_ADDR": "127.0.0.1:\(apiPort)", "LOG_LEVEL": "error"])
        try await waitForHTTP("http://127.0.0.1:\(apiPort)/health")
        try await waitForHTTP("http://127.0.0.1:\(metricsPort)/health")
        let http = CurlHTTPClient(configuration: { var c = CurlHTTPClient.Configuration(); c.threads = 48; return c }())
        let authorization = try await env.staffAuthorization()
        let cpuBefore = (indexer: indexer.cpuSeconds, postgres: try await Self.backendCPUSeconds(pool, "order-indexer"), machine: MachineCPU.read())
        let searchable = try await steady(rate: rate, seconds: seconds) { i in
            let response = try await http.execute(method: "POST", url: "http://127.0.0.1:\(apiPort)/orders",
                                                  headers: [("Content-Type", "application/json"), authorization],
                                                  body: Array(Self.orderBody(customer: i % 100, i).utf8))
            guard response.status == 201, let id = (try? JSONParser.parse(response.body))?["id"]?.stringValue else {
                throw BenchError("POST /orders answered \(response.status)")
            }
            return id
        } visible: { id in
            if nullSink { return true }
            return try await Self.isSearchable(id, in: "orders", client: client)
        }
        let drainDeadline = ContinuousClock.now + .seconds(300)
        while try await !BenchEnvironment.outboxIsEmpty(pool) {
            guard ContinuousClock.now < drainDeadline, indexer.isRunning else { throw BenchError("the indexer did not drain the outbox within 5 minutes") }
            try await Task.sleep(for: .milliseconds(50))
        }
        var machine = MachineCPU.Interval()
        machine.add(from: cpuBefore.machine, to: MachineCPU.read())
        let indexerCPU = (indexer: indexer.cpuSeconds - cpuBefore.indexer,
                          postgres: try await Self.backendCPUSeconds(pool, "order-indexer") - cpuBefore.postgres)
        let metrics = try await http.execute(method: "GET", url: "http://127.0.0.1:\(metricsPort)/metrics", headers: [authorization]).bodyString
        let (acknowledged, done) = try Self.ackLatencies(timings)
        indexer.stop()
        sink?.task.cancel()
        await client.shutdown()
        osmem.stop()
        // The baseline runs beside the same write load (orders placed through the API, nobody
        // indexing them), so the search server gets as much of the machine as it had above.
        var direct: (acknowledged: Latencies, searchable: Latencies)?
        if !nullSink {
            async let baseline = directAckLatencies(pool: pool, rate: rate, seconds: seconds)
            _ = try await steady(rate: rate, seconds: seconds) { i in
                let response = try await http.execute(method: "POST", url: "http://127.0.0.1:\(apiPort)/orders",
                                                      headers: [("Content-Type", "application/json"), authorization],
                                                      body: Array(Self.orderBody(customer: i % 100, i).utf8))
                guard response.status == 201 else { throw BenchError("POST /orders answered \(response.status)") }
                return ""
            } visible: { _ in true }
            direct = try await baseline
        }
        api.stop()
        await http.shutdown()
        await pool.shutdown()
        try? FileManager.default.removeItem(atPath: timings)

        report.add("rate_per_s", rate)
        report.add("seconds", seconds)
        report.add("events", acknowledged.count)
        report.add("p50_ack_ms", acknowledged.percentile(50) * 1000)
        report.add("p99_ack_ms", acknowledged.percentile(99) * 1000)
        report.add("p99_done_ms", done.percentile(99) * 1000)
        report.add("histogram_p99_ack_ms", (histogramPercentile(metrics, name: "indexer_commit_to_ack_seconds", 99) ?? .infinity) * 1000)
        report.add("bulk_p99_ms", (histogramPercentile(metrics, name: "indexer_bulk_duration_seconds", 99) ?? .infinity) * 1000)
        report.add("indexer_cpu_us_per_event", indexerCPU.indexer / Double(max(acknowledged.count, 1)) * 1e6, digits: 0)
        report.add("indexer_postgres_cpu_us_per_event", indexerCPU.postgres / Double(max(acknowledged.count, 1)) * 1e6, digits: 0)
        report.add("machine_busy", machine.busyFraction)
        report.add("idle_statement_p50_us", roundTrip.percentile(50) * 1e6, digits: 0)
        report.add("p50_searchable_ms", searchable.percentile(50) * 1000)
        report.add("p99_searchable_ms", searchable.percentile(99) * 1000)
        if let direct {
            let ratio = acknowledged.percentile(99) / max(direct.acknowledged.percentile(99), 1e-6)
            report.add("direct_p50_ack_ms", direct.acknowledged.percentile(50) * 1000)
            report.add("direct_p99_ack_ms", direct.acknowledged.percentile(99) * 1000)
            report.add("direct_p99_searchable_ms", direct.searchable.percentile(99) * 1000)
            report.add("p99_ack_ratio_vs_direct", ratio)
            report.target("commit → acknowledged p99 ≤ 1.2× the direct poster's", ratio <= 1.2)
        } else {
            report.target("commit → acknowledged p99 ≤ 5 ms (null sink)", acknowledged.percentile(99) * 1000 <= 5)
        }
        report.target("every event acknowledged", acknowledged.count == rate * seconds)
        return report
    }

    /// How long one trivial statement takes through the same client path as the indexer's (the
    /// libpq thread, PostgreSQL, back to the task) when the machine was idle just before: at 300
    /// events/s the pipeline mostly waits, and every hand-off between threads and processes pays
    /// a wake-up, which on some virtual machines costs several times the work itself. Before its
    /// bulk request a batch makes one such trip (three statements: the claim, its orders, their
    /// lines), and one more after it (the outbox delete); this says what each costs here.
    static func idleRoundTrips(_ pool: PostgresPool, count: Int = 200) async throws -> Latencies {
        var latencies = Latencies()
        for _ in 0..<count {
            try await Task.sleep(for: .milliseconds(5))
            let start = ContinuousClock.now
            _ = try await pool.query("SELECT 1")
            latencies.add((ContinuousClock.now - start).seconds)
        }
        return latencies
    }

    /// Per event from the indexer's `INDEXER_ACK_TIMINGS` lines: commit → acknowledged (the
    /// cluster's answer, what the direct poster measures too) and commit → done (out of the outbox).
    static func ackLatencies(_ path: String) throws -> (acknowledged: Latencies, done: Latencies) {
        var acknowledged = Latencies(), done = Latencies()
        let text = try String(contentsOfFile: path, encoding: .utf8)
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ").compactMap { Int64($0) }
            guard fields.count == 3 else { continue }
            acknowledged.add(Double(max(0, fields[1] - fields[0])) / 1e6)
            done.add(Double(max(0, fields[2] - fields[0])) / 1e6)
        }
        return (acknowledged, done)
    }

    /// The baseline poster: real order documents at `rate` per second into a fresh osmem-server,
    /// one connection, each request carrying whatever arrived while the previous one was out;
    /// per document, from its due time to the acknowledgement. Every 10th document is then polled
    /// until searchable, as the measured phase polls its orders: those polls are searches on the
    /// same single-threaded server, and the two sides must carry the same search load.
    func directAckLatencies(pool: PostgresPool, rate: Int, seconds: Int) async throws -> (acknowledged: Latencies, searchable: Latencies) {
        let osmem = try await env.startOsmem()
        defer { osmem.stop() }
        // The probes get a client of their own, as in the measured phase: none waits for a poster's connection.
        return try await env.withElasticsearch(osmem.url) { client in try await env.withElasticsearch(osmem.url) { probeClient in
            _ = try await IndexLayout(alias: "orders").ensureAlias(client)
            let documents = try await pool.withConnection { try OrderDocumentSource.page(after: nil, limit: 500, on: $0) }
            let queue = Mutex<[(Int, ContinuousClock.Instant)]>([])
            let start = ContinuousClock.now
            let interval = Duration.seconds(1) / rate
            let total = rate * seconds
            let producer = Task {
                for i in 0..<total {
                    try? await Task.sleep(until: start + interval * i, clock: .continuous)
                    queue.withLock { $0.append((i, start + interval * i)) }
                }
            }
            defer { producer.cancel() }
            return try await withThrowingTaskGroup(of: Double.self) { probes in
                var acknowledgedLatencies = Latencies(), searchable = Latencies()
                var sent = 0
                while sent < total {
                    let due = queue.withLock { queue -> [(Int, ContinuousClock.Instant)] in defer { queue.removeAll() }; return queue }
                    if due.isEmpty { try await Task.sleep(for: .milliseconds(1)); continue }
                    var request = BulkRequest()
                    for (i, _) in due {
                        let document = documents[i % documents.count]
                        request.index("orders", id: "ord_direct_\(i)", version: 1, requireAlias: true) { document.writeJSON(into: &$0) }
                    }
                    _ = try await client.bulk(request)
                    let acknowledged = ContinuousClock.now
                    for (i, dueAt) in due {
                        acknowledgedLatencies.add((acknowledged - dueAt).seconds)
                        guard Self.isProbed(i) else { continue }
                        probes.addTask { try await Self.secondsUntilVisible(since: acknowledged) { try await Self.isSearchable("ord_direct_\(i)", in: "orders", client: probeClient) } }
                    }
                    sent += due.count
                }
                for try await seconds in probes { searchable.add(seconds) }
                return (acknowledgedLatencies, searchable)
            }
        } }
    }
}
