import ElasticsearchClient
import Foundation
import JSONSupport
import LibPQClient
import Logging
import ReadModel
import ServiceTesting
import Synchronization

/// `isolation`: the product's promise, that search load does not slow order writes. Two "hosts"
/// on this machine: core 0 runs PostgreSQL (pinned by `scripts/bench`), the write API and the
/// indexer; core 1 runs osmem-server, the search API and this load generator. An open-loop write
/// load (place, then pay) at half of what the write side sustains runs three times: alone; with
/// a closed-loop search load through the search API; and, as the single-database baseline, with
/// the same searches run as SQL against the write database.
///
/// A 30-second phase's p99 is its slowest 1 %, so one stall of the write core moves it several-fold.
/// Two kinds of stall have nothing to do with search and are kept out of the comparison: work left
/// by the phase before (the indexer's backlog, dead rows) and PostgreSQL's background maintenance,
/// which its clock, not the load, places in one phase or another (autovacuum of this database or of
/// the ones earlier benchmarks left, checkpoints). So autovacuum is off while the phases run, and
/// before each phase the outbox is drained, the database vacuumed and analyzed and a checkpoint
/// taken: every phase starts from the same state. The alone and with-search phases alternate for
/// `rounds` rounds and each pools its rounds, so what drifts over the run weighs on both alike; the
/// single-database phase runs last, once, as its indexes slow every write after it.
public struct IsolationBenchmark: Sendable {
    struct Phase {
        var name: String
        var writes = Latencies()
        var searches = 0
        var seconds = 0.0
        var searchable = Latencies()
        var generatorCPU = 0.0
        var writeErrors = 0
        /// CPU seconds on the write host: the indexer and the write API, each with its PostgreSQL sessions.
        var indexerCPU = 0.0
        var writeSideCPU = 0.0
        /// Events the indexer acknowledged, and its bulk requests: how large its batches were.
        var indexedEvents = 0.0
        var bulkRequests = 0.0

        /// Another round of the same phase, pooled into this one.
        mutating func add(_ round: Phase) {
            writes.add(round.writes)
            searches += round.searches
            seconds += round.seconds
            searchable.add(round.searchable)
            generatorCPU += round.generatorCPU
            writeErrors += round.writeErrors
            indexerCPU += round.indexerCPU
            writeSideCPU += round.writeSideCPU
            indexedEvents += round.indexedEvents
            bulkRequests += round.bulkRequests
        }
    }

    let service: ServiceBenchmarks
    let seconds: Int
    /// Rounds of the alone and with-search phases, alternating.
    let rounds: Int
    let chartPath: String?

    public init(service: ServiceBenchmarks, seconds: Int = 30, rounds: Int = 2, chartPath: String?) {
        self.service = service
        self.seconds = seconds
        self.rounds = max(1, rounds)
        self.chartPath = chartPath
    }

    var env: BenchEnvironment { service.env }

    public func run() async throws -> BenchReport {
        try await CPUPinning.pin(postgresTo: 0, selfTo: 1)
        do {
            let report = try await measure()
            try await CPUPinning.pin(postgresTo: nil, selfTo: nil)
            return report
        } catch {
            try? await CPUPinning.pin(postgresTo: nil, selfTo: nil)
            throw error
        }
    }

    private func measure() async throws -> BenchReport {
        let (url, pool) = try await env.freshDatabase("bench_isolation")
        try await DataSet(orders: service.orders).load(into: pool, outbox: false)
        let osmem = try await env.startOsmem(cpu: 1)
        let client = ElasticsearchClient(configuration: .init(baseURL: osmem.url))
        _ = try await IndexLayout(alias: "orders").ensureAlias(client)
        _ = try await FullLoader(pool: pool, writer: BulkWriter(client: client, logger: service.logger), logger: service.logger)
            .load(into: "orders", throughAlias: true)
        let writePort = freePort(), searchPort = freePort(), indexerMetricsPort = freePort()
        let base = ["DATABASE_URL": url, "ELASTICSEARCH_URL": osmem.url, "ORDERS_INDEX": "orders", "LOG_LEVEL": "error"]
        let children = [
            try env.launch("order-indexer", environment: base.merging(["INDEXER_METRICS_ADDR": "127.0.0.1:\(indexerMetricsPort)"]) { $1 }, cpu: 0),
            try env.launch("order-write-api", environment: base.merging(["WRITE_API_ADDR": "127.0.0.1:\(writePort)"]) { $1 }, cpu: 0),
            try env.launch("order-search-api", environment: base.merging(["SEARCH_API_ADDR": "127.0.0.1:\(searchPort)"]) { $1 }, cpu: 1),
        ]
        let writeURL = "http://127.0.0.1:\(writePort)", searchURL = "http://127.0.0.1:\(searchPort)"
        try await waitForHTTP("\(writeURL)/health")
        try await waitForHTTP("\(searchURL)/health")
        let authorization = try await env.staffAuthorization()
        let http = CurlHTTPClient(configuration: { var c = CurlHTTPClient.Configuration(); c.threads = 32; return c }())

        let script = try ServiceBenchmarks.writeWrkScript()
        let sustained = try await ServiceBenchmarks.wrk(url: writeURL, script: script, token: authorization.1, concurrency: 16, duration: 5)
        try? FileManager.default.removeItem(atPath: script)
        let rate = max(10, Int(Double(sustained.requests) / sustained.seconds / 2))
        let queries = try await ServiceBenchmarks.queryMixWithDeepPages(http: http, base: searchURL, authorization: authorization)
        let writes = WriteLoad(logger: service.logger, http: http, base: writeURL, authorization: authorization, client: client)

        let hostCPU = WriteHostCPU(pool: pool, indexer: children[0], writeAPI: children[1], http: http,
                                   indexerMetrics: "http://127.0.0.1:\(indexerMetricsPort)/metrics", authorization: authorization)
        let quiet = QuietDatabase(pool: pool, logger: service.logger)
        let phases = try await withScoped({ try await quiet.autovacuumOff() }, stop: { _ in await quiet.autovacuumOn() }) { _ in
            var alone = Phase(name: "alone"), separated = Phase(name: "with search (Elasticsearch)")
            var roundRatios: [Double] = []
            for _ in 0..<rounds {
                try await quiet.settle()
                let aloneRound = try await phase(alone.name, rate: rate, writes: writes, hostCPU: hostCPU) { _ in 0 }
                try await quiet.settle()
                let separatedRound = try await phase(separated.name, rate: rate, writes: writes, hostCPU: hostCPU, trackSearchable: true) { stop in
                    await Self.closedLoop(concurrency: 8, until: stop) { i in
                        let response = try await http.execute(method: "GET", url: "\(searchURL)/search/orders?\(queries[i % queries.count])",
                                                              headers: [authorization])
                        guard response.status == 200 else { throw BenchError("search answered \(response.status)") }
                    }
                }
                roundRatios.append(separatedRound.writes.percentile(99) / max(aloneRound.writes.percentile(99), 1e-6))
                alone.add(aloneRound)
                separated.add(separatedRound)
            }
            for statement in SQLSearch.indexes { try await pool.withConnection { try $0.executeTrusted(statement) } }
            let sqlSearches = try await Self.sqlSearches(queries, pool: pool)
            try await quiet.settle()
            let singleDatabase = try await phase("with search (same PostgreSQL)", rate: rate, writes: writes, hostCPU: hostCPU) { stop in
                await Self.closedLoop(concurrency: 8, until: stop) { i in try await sqlSearches[i % sqlSearches.count].run(on: pool) }
            }
            return (alone, separated, singleDatabase, roundRatios)
        }
        children.forEach { $0.stop() }
        osmem.stop()
        await http.shutdown()
        await client.shutdown()
        await pool.shutdown()
        let (alone, separated, singleDatabase, roundRatios) = phases
        if let chartPath {
            try IsolationChart(phases: [alone, separated, singleDatabase], rate: rate).svg.write(toFile: chartPath, atomically: true, encoding: .utf8)
        }
        var report = report([alone, separated, singleDatabase], rate: rate, sustained: Double(sustained.requests) / sustained.seconds)
        report.add("write_p99_ratio_separated_by_round", roundRatios.map { String(format: "%.2f", $0) }.joined(separator: " "))
        return report
    }

    /// The write load for `seconds` while `background` runs (it returns its completed searches).
    private func phase(_ name: String, rate: Int, writes: WriteLoad, hostCPU: WriteHostCPU, trackSearchable: Bool = false,
                       background: @escaping @Sendable (_ stop: StopSignal) async -> Int) async throws -> Phase {
        service.logger.info("isolation phase", metadata: ["bench.phase": "\(name)", "bench.rate": "\(rate)"])
        let stop = StopSignal()
        let cpuBefore = Self.ownCPUSeconds()
        let hostBefore = try await hostCPU.read()
        let started = ContinuousClock.now
        async let searches = background(stop)
        let result = await writes.run(rate: rate, seconds: seconds, trackSearchable: trackSearchable)
        stop.set()
        var phase = Phase(name: name)
        phase.searches = await searches
        phase.seconds = (ContinuousClock.now - started).seconds
        phase.generatorCPU = Self.ownCPUSeconds() - cpuBefore
        let hostAfter = try await hostCPU.read()
        (phase.indexerCPU, phase.writeSideCPU) = (hostAfter.indexer - hostBefore.indexer, hostAfter.writeSide - hostBefore.writeSide)
        (phase.indexedEvents, phase.bulkRequests) = (hostAfter.events - hostBefore.events, hostAfter.bulkRequests - hostBefore.bulkRequests)
        (phase.writes, phase.searchable, phase.writeErrors) = result
        return phase
    }

    /// Runs `call` on `concurrency` tasks until `stop`; the number of calls that succeeded.
    static func closedLoop(concurrency: Int, until stop: StopSignal, _ call: @escaping @Sendable (Int) async throws -> Void) async -> Int {
        let next = Tally()
        return await withTaskGroup(of: Int.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var done = 0
                    while !stop.isSet {
                        let i = next.increment()
                        if (try? await call(i)) != nil { done += 1 }
                    }
                    return done
                }
            }
            return await group.reduce(0, +)
        }
    }

    /// The SQL form of each query; deep pages get the keyset position 1000, 2000 and 3000 rows down.
    static func sqlSearches(_ queries: [String], pool: PostgresPool) async throws -> [SQLSearch] {
        var depth = 0
        var searches: [SQLSearch] = []
        for query in queries {
            var search = SQLSearch(queryString: query)
            if query.contains("cursor=") {
                depth += 1000
                let offset = depth
                search.after = try await pool.withConnection { connection in
                    let row = try connection.query("""
                        SELECT (extract(epoch FROM created_at) * 1000)::bigint, id FROM orders ORDER BY created_at DESC, id DESC OFFSET $1 LIMIT 1
                        """, [offset]).first
                    return row.map { ($0.int64(0)!, $0.string(1)!) }
                }
            }
            searches.append(search)
        }
        return searches
    }

    /// User + system CPU seconds of this process (the load generator's own cost).
    static func ownCPUSeconds() -> Double { ServiceBenchmarks.cpuSeconds(Int32(RUSAGE_SELF.rawValue)) }

    private func report(_ phases: [Phase], rate: Int, sustained: Double) -> BenchReport {
        var report = BenchReport("isolation")
        let (alone, separated, single) = (phases[0], phases[1], phases[2])
        let separatedRatio = separated.writes.percentile(99) / max(alone.writes.percentile(99), 1e-6)
        let singleRatio = single.writes.percentile(99) / max(alone.writes.percentile(99), 1e-6)
        report.add("orders", service.orders)
        report.add("write_sustained_per_s", sustained, digits: 0)
        report.add("write_rate_per_s", rate)
        report.add("phase_seconds", seconds)
        report.add("rounds", rounds)
        for (key, phase) in [("alone", alone), ("separated", separated), ("single_db", single)] {
            report.add("write_p50_ms_\(key)", phase.writes.percentile(50) * 1000)
            report.add("write_p99_ms_\(key)", phase.writes.percentile(99) * 1000)
            report.add("write_errors_\(key)", phase.writeErrors)
            report.add("load_generator_cpu_s_\(key)", phase.generatorCPU)
            report.add("indexer_cpu_s_\(key)", phase.indexerCPU)
            report.add("write_side_cpu_s_\(key)", phase.writeSideCPU)
            report.add("indexer_cpu_us_per_event_\(key)", phase.indexerCPU / max(phase.indexedEvents, 1) * 1e6, digits: 0)
            report.add("indexer_events_per_request_\(key)", phase.indexedEvents / max(phase.bulkRequests, 1))
        }
        report.add("write_p99_ratio_separated", separatedRatio)
        report.add("write_p99_ratio_single_db", singleRatio)
        report.add("searches_per_s_separated", Double(separated.searches) / separated.seconds)
        report.add("searches_per_s_single_db", Double(single.searches) / single.seconds)
        report.add("searchable_p50_ms_separated", separated.searchable.percentile(50) * 1000)
        report.add("searchable_p99_ms_separated", separated.searchable.percentile(99) * 1000)
        report.target("write p99 with search load ≤ 1.2× alone (separated stores)", separatedRatio <= 1.2)
        report.target("no write failed alone or beside Elasticsearch search", alone.writeErrors + separated.writeErrors == 0)
        return report
    }
}

/// Place, then pay what was placed, at a fixed rate (open loop: latency counts from when a
/// command was due, so a stall is not hidden by the commands it delayed).
struct WriteLoad: Sendable {
    let logger: Logger
    let http: CurlHTTPClient
    let base: String
    let authorization: (String, String)
    let client: ElasticsearchClient

    static let placeBody = Array(#"{"customer_id":"cus_b1","currency":"EUR","items":[{"sku":"SKU-1","name":"Desk Lamp","quantity":1,"unit_price":"10.00"}],"shipping_address":{"line1":"Main Street 1","city":"Berlin","postal_code":"10115","country":"DE"}}"#.utf8)
    static let payBody = Array(#"{"payment_reference":"bench","amount":"10.00"}"#.utf8)

    func run(rate: Int, seconds: Int, trackSearchable: Bool) async -> (Latencies, Latencies, Int) {
        let interval = Duration.seconds(1) / rate
        let start = ContinuousClock.now
        let placed = PlacedOrders()
        let errors = Tally()
        let tracking = StopSignal()  // set while one order is being polled for: one at a time
        return await withTaskGroup(of: (Double?, Double?).self) { group in
            for i in 0..<(rate * seconds) {
                let due = start + interval * i
                try? await Task.sleep(until: due, clock: .continuous)
                group.addTask {
                    do {
                        return try await command(i, placed: placed, track: trackSearchable ? tracking : nil, due: due)
                    } catch {
                        if errors.increment() <= 3 { logger.warning("a write failed", metadata: ["error": "\(error)"]) }
                        return (nil, nil)
                    }
                }
            }
            var writes = Latencies(), searchable = Latencies()
            for await (write, visible) in group {
                if let write { writes.add(write) }
                if let visible { searchable.add(visible) }
            }
            return (writes, searchable, errors.value)
        }
    }

    /// Even numbers place an order, odd ones pay one placed before; during a tracked phase one
    /// placed order at a time is polled until searchable (a failed poll is not a failed write).
    /// The write's latency (from when it was due) and, when polled, commit → searchable.
    private func command(_ i: Int, placed: PlacedOrders, track: StopSignal?, due: ContinuousClock.Instant) async throws
        -> (Double?, Double?)
    {
        let headers = [("Content-Type", "application/json"), authorization]
        if i % 2 == 1, let id = placed.take() {
            let response = try await http.execute(method: "POST", url: "\(base)/orders/\(id)/pay", headers: headers, body: Self.payBody)
            guard response.status == 200 else { throw BenchError("pay answered \(response.status)") }
            return ((ContinuousClock.now - due).seconds, nil)
        }
        let response = try await http.execute(method: "POST", url: "\(base)/orders", headers: headers, body: Self.placeBody)
        guard response.status == 201, let id = (try? JSONParser.parse(response.body))?["id"]?.stringValue else {
            throw BenchError("place answered \(response.status)")
        }
        placed.add(id)
        let written = ContinuousClock.now
        let latency = (written - due).seconds
        guard let track, track.setIfClear() else { return (latency, nil) }
        defer { track.set(false) }
        while (try? await client.count("orders", query: ["term": ["order_id": .string(id)]])) ?? 0 == 0 {
            if ContinuousClock.now - written > .seconds(60) { return (latency, nil) }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return (latency, (ContinuousClock.now - written).seconds)
    }
}

/// CPU seconds used so far on the write host by the indexer and by the write API, each with its
/// PostgreSQL sessions (by `application_name`): what else the write core was busy with in a phase;
/// and the indexer's acknowledged events and bulk requests (its metrics), to tell how it batched.
struct WriteHostCPU: Sendable {
    let pool: PostgresPool
    let indexer: Child
    let writeAPI: Child
    let http: CurlHTTPClient
    let indexerMetrics: String
    let authorization: (String, String)

    struct Reading {
        var indexer: Double, writeSide: Double, events: Double, bulkRequests: Double
    }

    func read() async throws -> Reading {
        let indexerSessions = try await ServiceBenchmarks.backendCPUSeconds(pool, "order-indexer")
        let writeSessions = try await ServiceBenchmarks.backendCPUSeconds(pool, "order-write-api")
        let metrics = try await http.execute(method: "GET", url: indexerMetrics, headers: [authorization]).bodyString
        return Reading(indexer: indexer.cpuSeconds + indexerSessions, writeSide: writeAPI.cpuSeconds + writeSessions,
                       events: metricSum(metrics, "indexer_events_total"), bulkRequests: metricSum(metrics, "indexer_bulk_duration_seconds_count"))
    }
}

/// The sum of a Prometheus metric's samples over all its label sets (0 when absent).
func metricSum(_ metrics: String, _ name: String) -> Double {
    metrics.split(separator: "\n").reduce(0) { sum, line in
        guard line.hasPrefix(name + " ") || line.hasPrefix(name + "{"), let value = line.split(separator: " ").last.flatMap({ Double($0) }) else { return sum }
        return sum + value
    }
}

/// Set once to stop a closed loop.
final class StopSignal: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func set(_ on: Bool = true) { flag.store(on, ordering: .relaxed) }
    /// Sets it if it was clear; whether this call did.
    func setIfClear() -> Bool { flag.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged }
}

/// Orders placed and not yet paid.
final class PlacedOrders: Sendable {
    private let ids = Mutex<[String]>([])
    func add(_ id: String) { ids.withLock { $0.append(id) } }
    func take() -> String? { ids.withLock { $0.popLast() } }
}
