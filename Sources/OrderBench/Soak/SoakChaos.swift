import ElasticsearchClient
import FaultProxy
import Foundation
import LibPQClient
import Logging
import ServiceTesting
import Synchronization

/// Breaks things at random intervals, one fault at a time, every kind at least once when
/// the soak is long enough: SIGKILL and SIGTERM of indexers, osmem-server stopped and
/// brought back empty, 429/503/reset storms, a PostgreSQL restart, a reindex and a
/// `verify --repair`.
public final class SoakChaos: Sendable {
    public enum Fault: String, CaseIterable, Sendable {
        case storm, sigkill, postgresRestart, sigterm, verify, searchServerOutage, reindex
    }

    struct Outcome: Sendable {
        var faults: [String: Int] = [:]
        /// SIGTERM must end an indexer with status 0 within 12 s.
        var sigtermFailures = 0
        var verifyFailures = 0
        var reindexFailures = 0
        /// How long each reindex ran (succeeded or not).
        var reindexSeconds: [Double] = []
        var postgresRestartFailures = 0
        /// The last lines a failed `order-admin` printed (its progress or error), by command: the
        /// report keeps what its output file, removed afterwards, said.
        var adminLastWords: [String: String] = [:]
        /// The last line a successful `order-admin` printed (its summary), by command.
        var adminSummaries: [String: String] = [:]
        /// After osmem-server came back empty: documents the self-heal rebuild wrote per second (the
        /// orders PostgreSQL had then), from the moment the server answered again to the moment the
        /// rebuild had every document acknowledged. The detection is included: on a small data set the
        /// whole rebuild can be one bulk request, and timing from a later moment showed no loading
        /// time at all (a 2-minute soak reported 153× raw `_bulk`).
        var rebuildDocsPerSecond: Double?
        /// The same documents posted raw while the soak's server was down, beside the same load
        /// (`RawBulkBaseline.Condition.underLoad`).
        var rawBulkUnderLoadDocsPerSecond: Double?
        /// The same at osmem-server's fastest request size (`RawBulkBaseline.fastestDocumentsPerRequest`).
        var fastestRawBulkUnderLoadDocsPerSecond: Double?
        /// From osmem-server answering again to an indexer having started the rebuild (its workers'
        /// next retry or the 5 s alias check, whichever comes first).
        var rebuildDetectSeconds: Double?
        var lastFaultEnded = ContinuousClock.now
        var lastFault: Fault?
    }

    let stack: SoakStack
    let pool: PostgresPool
    let faults: [Fault]
    let restartPostgres: String?
    let outage: Duration
    let logger: Logger
    private let outcome = Mutex(Outcome())

    init(stack: SoakStack, pool: PostgresPool, faults: [Fault], restartPostgres: String?, outage: Duration, logger: Logger) {
        self.stack = stack
        self.pool = pool
        self.faults = faults
        self.restartPostgres = restartPostgres
        self.outage = outage
        self.logger = logger
    }

    var result: Outcome { outcome.withLock { $0 } }

    /// Runs faults until `deadline`, pausing `pause` (a random share of it) between them.
    func run(until deadline: ContinuousClock.Instant, pause: ClosedRange<Double>) async {
        var plan = faults
        // One outage per soak: a second would restart the rebuild measurement.
        let repeatable = faults.filter { $0 != .searchServerOutage }
        while ContinuousClock.now < deadline, !Task.isCancelled, !plan.isEmpty || !repeatable.isEmpty {
            try? await Task.sleep(for: .seconds(Double.random(in: pause)))
            guard ContinuousClock.now < deadline else { break }
            let fault = plan.isEmpty ? repeatable.randomElement()! : plan.removeFirst()
            logger.info("fault", metadata: ["soak.fault": "\(fault.rawValue)"])
            await inject(fault)
            outcome.withLock {
                $0.faults[fault.rawValue, default: 0] += 1
                $0.lastFaultEnded = .now
                $0.lastFault = fault
            }
        }
    }

    private func inject(_ fault: Fault) async {
        switch fault {
        case .storm: await storm()
        case .sigkill, .sigterm: await stopIndexer(signal: fault == .sigkill ? SIGKILL : SIGTERM)
        case .postgresRestart: await restartDatabase()
        case .verify: await runAdmin(["verify", "--repair"], within: .seconds(600), failures: \.verifyFailures)
        case .reindex:
            let seconds = await runAdmin(["reindex"], within: Self.reindexTimeLimit, failures: \.reindexFailures)
            outcome.withLock { $0.reindexSeconds.append(seconds) }
        case .searchServerOutage: await searchServerOutage()
        }
    }

    private func storm() async {
        let faults: [FaultProxy.Fault] = [.status(429), .status(503), .reset]
        stack.proxy.setPeriodic(every: 2, faults.randomElement()!)
        try? await Task.sleep(for: .seconds(Double.random(in: 5...15)))
        stack.proxy.setPeriodic(every: 0, nil)
    }

    private func stopIndexer(signal: Int32) async {
        let slot = Int.random(in: 0..<stack.indexerCount)
        let started = ContinuousClock.now
        let status = await stack.stopIndexer(slot, signal: signal)
        if signal == SIGTERM, status != 0 {
            outcome.withLock { $0.sigtermFailures += 1 }
            let printed = (try? String(contentsOfFile: stack.indexerOutputPath(slot), encoding: .utf8)) ?? ""
            logger.warning("a SIGTERMed indexer did not exit 0 in time", metadata: [
                "soak.status": "\(status.map(String.init) ?? "killed after 12 s")",
                "soak.seconds": "\(Int((ContinuousClock.now - started).seconds))", "soak.output": "\(printed.suffix(800))",
            ])
        }
        try? await Task.sleep(for: .seconds(Double.random(in: 1...3)))
        do { try stack.startIndexer(slot) } catch { logger.error("could not restart an indexer", metadata: ["error": "\(error)"]) }
    }

    private func restartDatabase() async {
        guard let restartPostgres else { return }
        let status = await Self.shell(restartPostgres)
        if status != 0 { outcome.withLock { $0.postgresRestartFailures += 1 } }
    }

    /// Stops osmem-server for `outage`, brings it back empty, and times the indexers' self-heal
    /// rebuild (`RebuildWatch`).
    ///
    /// While the server is down the raw `_bulk` baseline is taken beside the same load, on a server
    /// of its own; the outage lasts at least as long as that takes.
    private func searchServerOutage() async {
        await stack.stopOsmem()
        let outageEnds = ContinuousClock.now + outage
        do {
            let baseline = RawBulkBaseline(env: stack.env, pool: pool, logger: logger)
            let raw = try await baseline.measure(.underLoad)
            let fastest = try await baseline.measure(.underLoad, documentsPerRequest: RawBulkBaseline.fastestDocumentsPerRequest)
            outcome.withLock { ($0.rawBulkUnderLoadDocsPerSecond, $0.fastestRawBulkUnderLoadDocsPerSecond) = (raw, fastest) }
        } catch {
            logger.error("the raw _bulk baseline under load failed", metadata: ["error": "\(error)"])
        }
        try? await Task.sleep(until: outageEnds, clock: .continuous)
        do {
            try await stack.startOsmem()
            let back = ContinuousClock.now
            let (started, finished) = try await withScoped({ ElasticsearchClient(configuration: .init(baseURL: stack.osmemURL)) },
                                                           stop: { await $0.shutdown() }) { client in
                try await RebuildWatch(pool: pool, client: client, alias: stack.alias).run(patience: .seconds(600))
            }
            // Counted at the end: order ids sort by creation time, so the rebuild's last page also
            // read the orders placed while it ran (counted when the server came back, the figure
            // left out the 3-4 % of them placed during a 30-minute soak's rebuild).
            let orders = try await pool.query("SELECT count(*) FROM orders").first?.int(0) ?? 0
            outcome.withLock {
                $0.rebuildDocsPerSecond = Double(orders) / max((finished - back).seconds, 0.001)
                $0.rebuildDetectSeconds = (started - back).seconds
            }
        } catch {
            logger.error("osmem-server did not come back, or the index was not rebuilt", metadata: ["error": "\(error)"])
        }
    }

    /// A job runner's limit for the reindex. 20 minutes, not the verify's 10: one osmem-server beside
    /// the soak's full load gives a reindex about 100-130 documents/s, and a 30-minute soak has 65,000
    /// orders or more by the time its reindex runs (every 30-minute soak's reindex was stopped at 10
    /// minutes, at 27-98 %, and the first one given 20 minutes at 20).
    static let reindexTimeLimit: Duration = .seconds(1200)

    /// Runs `order-admin arguments` (at most `within`, then SIGTERM and a minute to undo its work, as a
    /// job runner's timeout would); a failure is counted and logged with how long it ran and the end of
    /// what it printed. Returns how long it ran.
    @discardableResult
    private func runAdmin(_ arguments: [String], within: Duration, failures: WritableKeyPath<Outcome, Int>) async -> Double {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("order-bench-admin-\(getpid()).log").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let started = ContinuousClock.now
        var status: Int32?
        do {
            let child = try stack.env.launch("order-admin", arguments, environment: [
                "DATABASE_URL": stack.databaseURL, "ELASTICSEARCH_URL": stack.osmemURL, "ORDERS_INDEX": stack.alias,
                // Info: a reindex's catch-up reports its progress in log lines (kept when it fails).
                "LOG_LEVEL": "info",
            ], outputPath: output)
            status = await child.waitForExit(within: within, grace: .seconds(60))
        } catch {
            status = -1
        }
        let seconds = (ContinuousClock.now - started).seconds
        let printed = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        guard status != 0 else {
            // What it did (a reindex: documents, waits, how long it loaded and caught up).
            let summary = printed.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).last.map(String.init) ?? ""
            outcome.withLock { $0.adminSummaries[arguments[0]] = String(summary.suffix(800)) }
            return seconds
        }
        // Three lines: a stopped reindex's last progress line comes before its "interrupted" and its
        // clean-up's.
        let lastLines = printed.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).suffix(3).joined(separator: " | ")
        outcome.withLock {
            $0[keyPath: failures] += 1
            $0.adminLastWords[arguments[0]] = String(lastLines.suffix(800))
        }
        logger.warning("order-admin failed", metadata: [
            "soak.command": "\(arguments.joined(separator: " "))", "soak.status": "\(status.map(String.init) ?? "stopped after \(Int(within.seconds)) s")",
            "soak.seconds": "\(Int(seconds))", "soak.output": "\(printed.suffix(800))",
        ])
        return seconds
    }

    /// Runs a shell command (the PostgreSQL restart `scripts/soak` hands over); its exit status, or -1
    /// when it did not end `within` (it is then killed).
    ///
    /// Waits with `waitpid` itself: the command leaves a daemon (the postmaster) that inherits
    /// the descriptor `Process` watches for the exit, so `Process.isRunning` would stay true.
    static func shell(_ command: String, within: Duration = .seconds(180)) async -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", command]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return -1 }
        let pid = process.processIdentifier
        var status: Int32 = 0
        let deadline = ContinuousClock.now + within
        while waitpid(pid, &status, WNOHANG) == 0 {
            guard ContinuousClock.now < deadline else {
                kill(pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                return -1
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
    }
}
