import Foundation
import JSONSupport
import LibPQClient
import OrderDomain
import OrderStore

extension ServiceBenchmarks {
    /// `write`: `POST /orders` at `concurrency` against the real order-write-api process, driven by
    /// wrk (C, a few µs per request, so the client's own cost does not count against the API);
    /// baseline: the same transactions through the application service and libpq, in-process.
    /// The two sides alternate in rounds so that the growing tables weigh on both alike.
    public func write(requests: Int, concurrency: Int = 16, rounds: Int = 2) async throws -> BenchReport {
        var report = BenchReport("write")
        let (url, pool) = try await env.freshDatabase("bench_write")
        try await DataSet(orders: 500).load(into: pool, outbox: false)  // 100 customers
        // The same sessions as the API's (`main` of order-write-api): size, and the statement, lock and
        // idle-in-transaction timeouts, which PostgreSQL arms and disarms around every statement.
        let sessions = PostgresPool(configuration: .init(connectionString: url, size: 16, applicationName: Self.directApplicationName,
                                                         session: .api(environment: [:])), logger: logger)
        let service = WriteService(pool: sessions, logger: logger)
        let port = freePort()
        let api = try env.launch("order-write-api", environment: ["DATABASE_URL": url, "WRITE_API_ADDR": "127.0.0.1:\(port)", "LOG_LEVEL": "error"])
        try await waitForHTTP("http://127.0.0.1:\(port)/health")
        let authorization = try await env.staffAuthorization()
        let script = try Self.writeWrkScript()
        var direct = (requests: 0, seconds: 0.0, latency: Latencies())
        var http = WrkResult(requests: 0, seconds: 0, non2xx: 0, latency: Latencies())
        var apiCPU = 0.0, directCPU = 0.0
        // Where each side's CPU goes, PostgreSQL included: the difference is what HTTP adds.
        var postgresCPU = (http: 0.0, direct: 0.0)
        // Whether a side kept both cores busy (CPU-bound) or waited (hand-offs, round trips).
        var machine = (http: MachineCPU.Interval(), direct: MachineCPU.Interval())
        for round in 0..<rounds {
            let directBefore = (own: Self.cpuSeconds(Int32(RUSAGE_SELF.rawValue)), postgres: try await Self.backendCPUSeconds(pool, Self.directApplicationName),
                                machine: MachineCPU.read())
            let (seconds, latency) = try await Self.load(total: requests / rounds, concurrency: concurrency) { i in
                _ = try await service.placeOrder(Self.placeOrder(round * requests + i), request: .init(idempotencyKey: nil, fingerprint: "", expectedVersion: nil)) {
                    .init(status: 201, headers: [:], body: $0.json)
                }
            }
            directCPU += Self.cpuSeconds(Int32(RUSAGE_SELF.rawValue)) - directBefore.own
            machine.direct.add(from: directBefore.machine, to: MachineCPU.read())
            postgresCPU.direct += try await Self.backendCPUSeconds(pool, Self.directApplicationName) - directBefore.postgres
            direct.requests += requests / rounds
            direct.seconds += seconds
            direct.latency.add(latency)
            // About as long as the direct round took, so both sides see the same table sizes.
            let httpBefore = (api: api.cpuSeconds, postgres: try await Self.backendCPUSeconds(pool, "order-write-api"), machine: MachineCPU.read())
            let result = try await Self.wrk(url: "http://127.0.0.1:\(port)", script: script, token: authorization.1, concurrency: concurrency,
                                            duration: max(3, Int(seconds.rounded())))
            apiCPU += api.cpuSeconds - httpBefore.api
            postgresCPU.http += try await Self.backendCPUSeconds(pool, "order-write-api") - httpBefore.postgres
            machine.http.add(from: httpBefore.machine, to: MachineCPU.read())
            http.add(result)
        }
        api.stop()
        await sessions.shutdown()
        await pool.shutdown()
        try? FileManager.default.removeItem(atPath: script)

        let httpRate = Double(http.requests) / http.seconds, directRate = Double(direct.requests) / direct.seconds
        report.add("concurrency", concurrency)
        report.add("http_requests", http.requests)
        report.add("http_orders_per_s", httpRate, digits: 0)
        report.add("p50_ms", http.latency.percentile(50) * 1000)
        report.add("p99_ms", http.latency.percentile(99) * 1000)
        report.add("raw_sql_orders_per_s", directRate, digits: 0)
        report.add("raw_sql_p50_ms", direct.latency.percentile(50) * 1000)
        report.add("raw_sql_p99_ms", direct.latency.percentile(99) * 1000)
        report.add("ratio_vs_raw_sql", httpRate / directRate)
        report.add("api_cpu_us_per_request", apiCPU / Double(max(http.requests, 1)) * 1e6, digits: 1)
        report.add("client_cpu_us_per_request", http.cpuSeconds / Double(max(http.requests, 1)) * 1e6, digits: 1)
        report.add("postgres_cpu_us_per_request", postgresCPU.http / Double(max(http.requests, 1)) * 1e6, digits: 1)
        report.add("raw_sql_cpu_us_per_request", directCPU / Double(max(direct.requests, 1)) * 1e6, digits: 1)
        report.add("raw_sql_postgres_cpu_us_per_request", postgresCPU.direct / Double(max(direct.requests, 1)) * 1e6, digits: 1)
        report.add("machine_busy_http", machine.http.busyFraction)
        report.add("machine_busy_raw_sql", machine.direct.busyFraction)
        report.add("auth_us_per_request", try await Self.verificationMicroseconds(secret: env.authSecret, token: authorization.1))
        report.add("non_201", http.non2xx)
        report.target("HTTP ≥ 0.8× raw libpq", httpRate / directRate >= 0.8)
        report.target("every request answered 201", http.non2xx == 0)
        return report
    }

    static let directApplicationName = "order-bench-write"

    static func placeOrder(_ i: Int) -> PlaceOrder {
        PlaceOrder(customerID: "cus_b\(i % 100)", currency: "EUR",
                   items: [.init(sku: "SKU-\(i % 20)", name: DataSet.products[i % DataSet.products.count], quantity: 1 + i % 3, unitPrice: "\(5 + i % 50).99")],
                   shippingAddress: ShippingAddress(line1: "Main Street 1", line2: nil, city: "Berlin", postalCode: "10115", country: "DE"), note: nil)
    }

    struct WrkResult {
        var requests: Int
        var seconds: Double
        var non2xx: Int
        var latency: Latencies
        /// wrk's own user + system CPU seconds.
        var cpuSeconds = 0.0

        mutating func add(_ other: WrkResult) {
            requests += other.requests
            seconds += other.seconds
            non2xx += other.non2xx
            latency.add(other.latency)
            cpuSeconds += other.cpuSeconds
        }
    }

    /// The same bodies as `orderBody`, made by wrk's Lua once per thread, before the run: 1009
    /// requests (a prime, so customers, SKUs and quantities mix) cycled through, so that formatting
    /// a body per request does not count against the API (the client shares its two cores).
    /// `done` prints one JSON line with the counts and every recorded latency percentile from 1 to
    /// 100 (wrk keeps all of them).
    static let wrkScript = """
        wrk.method = "POST"
        wrk.headers["Content-Type"] = "application/json"
        wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
        local products = {\(DataSet.products.map { "\"\($0)\"" }.joined(separator: ","))}
        local requests = {}
        local counter = 0
        function setup(thread) thread:set("offset", math.random(0, 1000000)) end
        function init(args)
            for n = 1, 1009 do
                local i = n + (offset or 0)
                local body = string.format('{"customer_id":"cus_b%d","currency":"EUR","items":[{"sku":"SKU-%d","name":"%s","quantity":%d,"unit_price":"%d.99"}],"shipping_address":{"line1":"Main Street 1","city":"Berlin","postal_code":"10115","country":"DE"}}',
                    i % 100, i % 20, products[(i % #products) + 1], 1 + i % 3, 5 + i % 50)
                requests[n] = wrk.format(nil, "/orders", nil, body)
            end
        end
        function request()
            counter = counter % #requests + 1
            return requests[counter]
        end
        function done(summary, latency, requests)
            local p = {}
            for q = 1, 99 do p[#p + 1] = latency:percentile(q) end
            p[#p + 1] = latency:percentile(99.9)
            io.write(string.format('WRK {"requests":%d,"micros":%d,"non2xx":%d,"percentiles":[%s]}\\n',
                summary.requests, summary.duration, summary.errors.status, table.concat(p, ",")))
        end
        """

    static func writeWrkScript() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("order-bench-\(getpid()).lua").path
        try wrkScript.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Runs wrk (two threads) for `duration` seconds and reads its `done` line.
    static func wrk(url: String, script: String, token: String, concurrency: Int, duration: Int) async throws -> WrkResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["wrk", "-t2", "-c\(concurrency)", "-d\(duration)s", "-s", script, url]
        process.environment = ProcessInfo.processInfo.environment.merging(["BENCH_TOKEN": String(token.dropFirst("Bearer ".count))]) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        let childrenCPU = Self.childrenCPUSeconds()
        try process.run()
        // Its output (one short line) fits the pipe's buffer: read it once wrk has exited.
        while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        let cpu = Self.childrenCPUSeconds() - childrenCPU
        let data = output.fileHandleForReading.readDataToEndOfFile()
        guard let line = String(decoding: data, as: UTF8.self).split(separator: "\n").first(where: { $0.hasPrefix("WRK ") }),
              let json = try? JSONParser.parse(String(line.dropFirst(4))),
              let requests = json["requests"]?.intValue, let micros = json["micros"]?.intValue
        else { throw BenchError("wrk failed or printed no result (is wrk installed? scripts/bench installs it)") }
        // wrk reports percentiles, not samples: record each percentile's value once per 1 % of requests.
        var latency = Latencies()
        for value in json["percentiles"]?.arrayValue ?? [] { latency.add(Double(value.intValue ?? 0) / 1e6) }
        return WrkResult(requests: requests, seconds: Double(micros) / 1e6, non2xx: json["non2xx"]?.intValue ?? 0, latency: latency,
                         cpuSeconds: cpu)
    }

    /// CPU seconds the PostgreSQL backends serving `applicationName` have used so far (read from
    /// /proc: the benchmark's server runs on this machine). Both sides keep their pool's 16
    /// connections for the whole run, so differences between two readings are theirs.
    static func backendCPUSeconds(_ pool: PostgresPool, _ applicationName: String) async throws -> Double {
        try await pool.query("SELECT pid FROM pg_stat_activity WHERE application_name = $1", [applicationName])
            .compactMap { $0.int(0) }.map { Child.cpuSeconds(pid: Int32($0)) }.reduce(0, +)
    }

    /// User + system CPU seconds of this process's children that have exited (wrk, once reaped).
    static func childrenCPUSeconds() -> Double { cpuSeconds(Int32(RUSAGE_CHILDREN.rawValue)) }

    /// User + system CPU seconds `getrusage` reports for `who` (`RUSAGE_SELF`, `RUSAGE_CHILDREN`).
    static func cpuSeconds(_ who: Int32) -> Double {
        var usage = rusage()
        getrusage(who, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}

/// The whole machine's CPU time from /proc/stat: how busy the cores were over an interval.
enum MachineCPU {
    struct Reading {
        var busy = 0.0, total = 0.0
    }

    struct Interval {
        var busy = 0.0, total = 0.0

        mutating func add(from start: Reading, to end: Reading) {
            busy += end.busy - start.busy
            total += end.total - start.total
        }

        /// Busy share of all cores' time (1 = every core busy throughout).
        var busyFraction: Double { total > 0 ? busy / total : 0 }
    }

    /// The first line of /proc/stat: user nice system idle iowait irq softirq steal (in ticks).
    static func read() -> Reading {
        guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = stat.split(separator: "\n").first, line.hasPrefix("cpu ") else { return Reading() }
        let ticks = line.split(separator: " ").dropFirst().prefix(8).compactMap { Double($0) }
        guard ticks.count == 8 else { return Reading() }
        let idle = ticks[3] + ticks[4]
        let total = ticks.reduce(0, +)
        return Reading(busy: total - idle, total: total)
    }
}
