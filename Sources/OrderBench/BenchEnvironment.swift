import ElasticsearchClient
import Foundation
import Logging
import Security
import TokenSigning
import OrderStore
import LibPQClient
import ServiceSupport
import ServiceTesting

/// What `scripts/bench` provides: a private PostgreSQL, the osmem-server
/// binary, and the directory of the release products.
public struct BenchEnvironment: Sendable {
    public let databaseURL: String
    public let osmemPath: String
    public let binDirectory: String
    public let logger: Logger
    /// `AUTH_JWT_SECRET` and `SIGNING_KEY` as scripts/bench exports them; the
    /// launched services inherit them, so authentication is on as in production.
    public let authSecret: String
    public let signer: TokenSigner

    public init(logger: Logger) throws {
        let env = ProcessInfo.processInfo.environment
        guard let url = env["ORDER_BENCH_DATABASE_URL"], let osmem = env["ORDER_BENCH_OSMEM"], let bin = env["ORDER_BENCH_BIN"] else {
            throw BenchError("run the benchmark through scripts/bench (it starts PostgreSQL and sets ORDER_BENCH_*)")
        }
        guard let secret = env["AUTH_JWT_SECRET"], let signer = try? TokenSigner(environment: env) else {
            throw BenchError("AUTH_JWT_SECRET and SIGNING_KEY must be set (scripts/bench sets them)")
        }
        authSecret = secret
        self.signer = signer
        databaseURL = url
        osmemPath = osmem
        binDirectory = bin
        self.logger = logger
    }

    /// `Authorization: Bearer …` of a staff token, for the HTTP calls.
    public func staffAuthorization() async throws -> (String, String) {
        let token = try await AccessTokenMinter(secret: authSecret).mint(subject: "order-bench", roles: [.staff], ttl: .seconds(4 * 3600))
        return ("Authorization", "Bearer \(token)")
    }

    /// A fresh, migrated database.
    public func freshDatabase(_ name: String) async throws -> (url: String, pool: PostgresPool) {
        // Through a pool: libpq blocks, and this is async code on the cooperative pool.
        let admin = PostgresPool(configuration: .init(connectionString: databaseURL, size: 1, applicationName: "order-bench"), logger: logger)
        try await admin.withConnection { connection in
            try connection.executeTrusted("DROP DATABASE IF EXISTS \(name)")
            try connection.executeTrusted("CREATE DATABASE \(name)")
        }
        await admin.shutdown()
        guard let slash = databaseURL.lastIndex(of: "/") else { throw BenchError("ORDER_BENCH_DATABASE_URL has no database name") }
        let url = String(databaseURL[...slash]) + name
        let pool = PostgresPool(configuration: .init(connectionString: url, size: 16, applicationName: "order-bench"), logger: logger)
        try await Migrator(logger: logger).migrate(pool)
        return (url, pool)
    }

    /// Runs `body` with a fresh database and its pool, shut down afterwards.
    public func withFreshDatabase<T>(_ name: String, _ body: (String, PostgresPool) async throws -> T) async throws -> T {
        try await withScoped({ try await freshDatabase(name) }, stop: { await $0.pool.shutdown() }) { try await body($0.url, $0.pool) }
    }

    /// Whether the outbox is drained, for the benchmarks' polling loops. One primary-key lookup:
    /// `count(*)` scans the whole backlog, and every 50 ms that took CPU from what is measured.
    public static func outboxIsEmpty(_ pool: PostgresPool) async throws -> Bool {
        try await pool.query("SELECT id FROM outbox ORDER BY id LIMIT 1").isEmpty
    }

    /// Runs `body` with a client of `url`, shut down afterwards.
    public func withElasticsearch<T>(_ url: String, _ body: (ElasticsearchClient) async throws -> T) async throws -> T {
        try await withScoped({ ElasticsearchClient(configuration: .init(baseURL: url)) }, stop: { await $0.shutdown() }, body)
    }

    /// A fresh (empty) osmem-server on a free port.
    public func startOsmem(port: Int = freePort(), cpu: Int? = nil) async throws -> Child {
        let arguments = ["-addr", "127.0.0.1:\(port)", "-no-stdin-watch", "-no-ja", "-parent-pid", String(getpid())]
        let child = try Child(Self.pinned(osmemPath, arguments, cpu: cpu), environment: [:], port: port)
        Self.recordForCleanUp(child.pid)
        let up = try await withElasticsearch(child.url) { client in
            for _ in 0..<100 {
                if await client.ping("orders") { return true }
                try await Task.sleep(for: .milliseconds(100))
            }
            return false
        }
        if up { return child }
        child.stop()
        throw BenchError("osmem-server did not start")
    }

    /// Starts `product`; what it prints goes to `outputPath` (created or truncated), or nowhere.
    public func launch(_ product: String, _ arguments: [String] = [], environment: [String: String], port: Int? = nil,
                       cpu: Int? = nil, outputPath: String? = nil) throws -> Child {
        let child = try Child(Self.pinned(binDirectory + "/" + product, arguments, cpu: cpu), environment: environment, port: port,
                              outputPath: outputPath)
        Self.recordForCleanUp(child.pid)
        return child
    }

    /// The command line that runs `path` on core `cpu` only (`taskset` execs it: same pid).
    static func pinned(_ path: String, _ arguments: [String], cpu: Int?) -> (String, [String]) {
        guard let cpu else { return (path, arguments) }
        return ("/usr/bin/taskset", ["-c", String(cpu), path] + arguments)
    }

    /// Appends `pid` to `ORDER_BENCH_PIDFILE`, so the calling script can stop what is left should
    /// order-bench itself be killed (each child runs in its own process group).
    static func recordForCleanUp(_ pid: Int32) {
        guard let path = ProcessInfo.processInfo.environment["ORDER_BENCH_PIDFILE"],
              let file = FileHandle(forWritingAtPath: path) ?? (FileManager.default.createFile(atPath: path, contents: nil) ? FileHandle(forWritingAtPath: path) : nil)
        else { return }
        file.seekToEndOfFile()
        file.write(Data("\(pid)\n".utf8))
        try? file.close()
    }
}

public struct BenchError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A child process with CPU and memory readings from /proc.
public final class Child: @unchecked Sendable {
    let process = Process()
    public let port: Int?

    convenience init(_ command: (String, [String]), environment: [String: String], port: Int?, outputPath: String? = nil) throws {
        try self.init(command.0, command.1, environment: environment, port: port, outputPath: outputPath)
    }

    init(_ path: String, _ arguments: [String], environment: [String: String], port: Int?, outputPath: String? = nil) throws {
        self.port = port
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if let outputPath, FileManager.default.createFile(atPath: outputPath, contents: nil), let file = FileHandle(forWritingAtPath: outputPath) {
            process.standardOutput = file
            process.standardError = file
        } else {
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
        }
        try process.run()
    }

    public var url: String { "http://127.0.0.1:\(port ?? 0)" }
    public var pid: Int32 { process.processIdentifier }

    /// User + system CPU seconds so far.
    public var cpuSeconds: Double { Self.cpuSeconds(pid: pid) }

    /// User + system CPU seconds of any process on this machine so far (0 once it is gone).
    static func cpuSeconds(pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command: state(0) ppid … utime is field 14 overall → index 11 here, stime 12.
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Peak resident set size in MB (VmHWM).
    public var peakRSSMegabytes: Double { Self.statusField("VmHWM", pid: pid) }
    public var rssMegabytes: Double { Self.statusField("VmRSS", pid: pid) }

    static func statusField(_ name: String, pid: Int32) -> Double {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix(name + ":") {
            let kb = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
            return kb / 1024
        }
        return 0
    }

    public func stop(signal: Int32 = SIGTERM) {
        if process.isRunning { kill(pid, signal) }
        process.waitUntilExit()
    }

    /// Sends `signal` and polls (never blocking a thread) up to `within` for the exit:
    /// the exit status, or nil if it was still running (it is then killed).
    public func stop(signal: Int32, within: Duration) async -> Int32? {
        guard await exited(after: signal, within: within) else { kill(pid, SIGKILL); return nil }
        return process.terminationStatus
    }

    public var isRunning: Bool { process.isRunning }

    /// Waits (polling) up to `within` for the process to end by itself: its exit status. Past that,
    /// nil: it gets SIGTERM and up to `grace` to wind down (a reindex removes its half-loaded
    /// index, as after an operator's Ctrl-C), then SIGKILL.
    public func waitForExit(within: Duration, grace: Duration = .zero) async -> Int32? {
        if await exited(after: 0, within: within) { return process.terminationStatus }
        if grace > .zero { _ = await exited(after: SIGTERM, within: grace) }
        if process.isRunning { kill(pid, SIGKILL) }
        return nil
    }

    /// Sends `signal` (0: none) and polls up to `within` for the exit; whether it exited.
    private func exited(after signal: Int32, within: Duration) async -> Bool {
        if signal != 0, process.isRunning { kill(pid, signal) }
        let deadline = ContinuousClock.now + within
        while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        return !process.isRunning
    }

    public func wait() -> Int32 {
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit { if process.isRunning { kill(pid, SIGKILL) } }
}

public func freePort() -> Int { LoopbackPort.free() }

/// Waits for an HTTP endpoint to answer 200.
func waitForHTTP(_ url: String, timeout: Duration = .seconds(30)) async throws {
    let up = try await withScoped({ CurlHTTPClient() }, stop: { await $0.shutdown() }) { http in
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if (try? await http.execute(method: "GET", url: url).status) == 200 { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }
    if !up { throw BenchError("\(url) did not come up") }
}
