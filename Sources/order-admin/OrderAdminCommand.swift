import ArgumentParser
import ElasticsearchClient
import Foundation
import Logging
import OrderAdmin
import OrderStore
import LibPQClient
import ReadModel
import Security
import ServiceSupport

@main
struct OrderAdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "order-admin",
        abstract: "Operate the order system: schema migrations, reindexing, drift checks, dead letters.",
        subcommands: [Migrate.self, Reindex.self, Verify.self, DeadLettersCommand.self, Token.self]
    )
}

/// What every subcommand needs, from the contract's environment variables.
struct AdminContext {
    let logger: Logger
    let configuration: ServiceConfiguration
    let pool: PostgresPool
    let client: ElasticsearchClient

    init(label: String = "order-admin") {
        logger = Observability.bootstrap(label: label)
        configuration = ServiceConfiguration(environment: ProcessInfoEnvironment.all)
        pool = PostgresPool(configuration: .init(connectionString: configuration.databaseURL, size: 4, applicationName: "order-admin"), logger: logger)
        client = ElasticsearchClient(configuration: .init(environment: ProcessInfoEnvironment.all))
    }

    var layout: IndexLayout { IndexLayout(alias: configuration.ordersIndex) }

    func close() async {
        // A stopped command's abandoned transfer (a bulk request to a busy cluster) is not waited for.
        await client.shutdown(patience: .milliseconds(500))
        await pool.shutdown()
    }

    /// Runs `body` with a context that is closed afterwards, whether `body` returned or threw.
    static func with<T>(_ body: (AdminContext) async throws -> T) async throws -> T {
        let context = AdminContext()
        do {
            let result = try await body(context)
            await context.close()
            return result
        } catch {
            await context.close()
            throw error
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Bring the write database schema up to date (safe to run repeatedly and concurrently).")

    func run() async throws {
        do {
            let applied = try await AdminContext.with { try await Migrator(logger: $0.logger).migrate($0.pool) }
            print(applied.isEmpty ? "schema is up to date" : "applied migrations: \(applied.map(String.init).joined(separator: ", "))")
        } catch {
            throw ValidationError("migration failed: \(error)")
        }
    }
}

struct Reindex: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rebuild the order index from PostgreSQL into a new versioned index, then swap the alias atomically.",
        discussion: "Searches keep working throughout; writes made meanwhile reach the new index through the running indexers."
    )

    @Option(help: "Orders per bulk request.") var batchSize = Reindexer.Options().batchSize
    @Option(help: "Bulk requests kept out at once (more: a faster reindex, slower live updates on a busy cluster).")
    var requestsInFlight = Reindexer.Options().requestsInFlight
    @Option(help: "Wait before each page while live indexing is more than this many seconds behind (at most \(Int(Reindexer.Options().longestPausePerPage.seconds)) s a page; 0: never).")
    var yieldAtLag = Int(Reindexer.Options().yieldAtLag.seconds)
    @Flag(help: "Keep the previous index after the swap.") var keepOld = false
    @Flag(help: "Show what would happen without changing anything.") var dryRun = false
    @Option(help: "Use this mapping file instead of the packaged mappings/orders.json.") var mappings: String?

    func validate() throws {
        guard (1...10_000).contains(batchSize) else { throw ValidationError("--batch-size must be from 1 to 10000") }
        guard (1...8).contains(requestsInFlight) else { throw ValidationError("--requests-in-flight must be from 1 to 8") }
        guard (0...3600).contains(yieldAtLag) else { throw ValidationError("--yield-at-lag must be from 0 to 3600 seconds") }
    }

    func run() async throws {
        try await AdminContext.with(run)
    }

    private func run(_ context: AdminContext) async throws {
        var options = Reindexer.Options()
        options.batchSize = batchSize
        options.requestsInFlight = requestsInFlight
        options.yieldAtLag = .seconds(yieldAtLag)
        options.keepOld = keepOld
        options.dryRun = dryRun
        options.mappingPath = mappings
        let reindexer = Reindexer(pool: context.pool, client: context.client, layout: context.layout, options: options, logger: context.logger)
        let progress = ProgressDisplay(interactive: isatty(STDERR_FILENO) == 1)
        do {
            // A Ctrl-C or SIGTERM cancels the load, which then removes its half-loaded index.
            let report = try await cancellingOnInterrupt { try await reindexer.run { done, total in progress.update(done: done, total: total) } }
            progress.finish()
            if report.dryRun {
                print("dry run: would load \(report.documents) orders into \(report.newIndex) and point \(context.configuration.ordersIndex) at it (now: \(report.oldIndices.joined(separator: ", ").ifEmpty("none")))")
            } else {
                print("reindexed \(report.documents) orders into \(report.newIndex); alias \(context.configuration.ordersIndex) swapped"
                      + (report.oldIndices.isEmpty ? "" : keepOld ? "; kept \(report.oldIndices.joined(separator: ", "))" : "; deleted \(report.oldIndices.joined(separator: ", "))")
                      + (report.caughtUp == 0 ? "" : "; then \(report.caughtUp) documents of orders changed meanwhile")
                      + (report.yielded < .seconds(1) ? "" : "; waited \(Int(report.yielded.seconds)) s for live indexing")
                      + "; loaded in \(Int(report.loading.seconds)) s, caught up in \(Int(report.catchingUp.seconds)) s")
                if !report.rejected.isEmpty {
                    FileHandle.standardError.write(Data("order-admin reindex: the new index refused \(report.rejected.count) changed document(s) after the swap; kept as dead letters (order-admin dead-letters list)\n".utf8))
                    throw ExitCode.failure
                }
            }
        } catch let exit as ExitCode {
            throw exit  // already explained
        } catch let interrupted as Interrupted {
            progress.finish()
            FileHandle.standardError.write(Data("order-admin reindex: \(interrupted)\n".utf8))
            throw ExitCode(interrupted.exitCode)
        } catch {
            progress.finish()
            FileHandle.standardError.write(Data("order-admin reindex: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Compare every order in PostgreSQL with its search document; print what drifted.")

    @Flag(help: "Re-index stale and missing documents and remove extra ones.") var repair = false

    func run() async throws {
        try await AdminContext.with(run)
    }

    private func run(_ context: AdminContext) async throws {
        let verifier = DriftVerifier(pool: context.pool, client: context.client, layout: context.layout, logger: context.logger)
        do {
            let report = try await verifier.run(repair: repair) { drift in
                switch drift {
                case .missing(let id): print("missing \(id)")
                case .stale(let id, let indexed, let current): print("stale \(id) (indexed version \(DocumentVersion(packed: indexed)), current \(DocumentVersion(packed: current)))")
                case .extra(let id): print("extra \(id)")
                }
            } onProgress: { line in
                print(line)
            }
            print("checked \(report.checked) orders: \(report.missing) missing, \(report.stale) stale, \(report.extra) extra"
                  + (repair ? ", \(report.repaired) repaired" : "") + "; \(report.lagging) in flight (events still in the outbox, not drift)")
            if report.drifted > 0 && !(repair && report.repaired == report.drifted) { throw ExitCode.failure }
        } catch let error as ExitCode {
            throw error
        } catch {
            FileHandle.standardError.write(Data("order-admin verify: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

struct DeadLettersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dead-letters", abstract: "Events whose documents Elasticsearch refused.", subcommands: [List.self, Retry.self, Purge.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List dead letters.")
        @Option(help: "At most this many.") var limit = 100

        func run() async throws {
            let entries = try await AdminContext.with { try await DeadLetters(pool: $0.pool).list(limit: limit) }
            for e in entries {
                print("\(e.id)\t\(e.failedAt)\t\(e.aggregateType) \(e.aggregateID) v\(e.aggregateVersion)\t\(e.eventType)\tstatus \(e.errorStatus) \(e.errorType ?? "")")
            }
            if entries.isEmpty { print("no dead letters") }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Move dead letters back into the outbox (all, or the given ids).")
        @Argument(help: "Dead-letter ids (default: all).") var ids: [Int64] = []

        func run() async throws {
            let moved = try await AdminContext.with { try await DeadLetters(pool: $0.pool).retry(ids: ids.isEmpty ? nil : ids) }
            print("re-queued \(moved) event(s)")
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete dead letters that failed longer ago than the retention (in batches, each its own short transaction)."
        )
        @Option(help: "Retention: a number with s, m, h or d (for example 30d).") var olderThan: String

        func validate() throws {
            if DurationText.seconds(olderThan) == nil { throw ValidationError("--older-than must be a positive number with s, m, h or d") }
        }

        func run() async throws {
            let deleted = try await AdminContext.with { try await DeadLetters(pool: $0.pool).purge(olderThanSeconds: DurationText.seconds(olderThan) ?? 0) }
            print("deleted \(deleted) dead letter(s)")
        }
    }
}

/// `90s`, `30m`, `1h`, `30d` → seconds (at most a year): `--ttl`, `--older-than`.
enum DurationText {
    static func seconds(_ text: String) -> Int? {
        guard let unit = text.last, let value = Int(text.dropLast()), value > 0 else { return nil }
        let factor = ["s": 1, "m": 60, "h": 3600, "d": 86_400][String(unit)]
        guard let factor, value <= 366 * 86_400 / factor else { return nil }
        return value * factor
    }
}

/// A one-line progress bar on a terminal (documents, rate, ETA); plain log lines otherwise.
final class ProgressDisplay: @unchecked Sendable {
    private let interactive: Bool
    private let lock = NSLock()
    private let started = Date()
    private var lastPrint = Date.distantPast

    init(interactive: Bool) { self.interactive = interactive }

    func update(done: Int, total: Int) {
        lock.lock()
        defer { lock.unlock() }
        let now = Date()
        guard now.timeIntervalSince(lastPrint) >= (interactive ? 0.2 : 5) || done >= total else { return }
        lastPrint = now
        let elapsed = max(0.001, now.timeIntervalSince(started))
        let rate = Double(done) / elapsed
        let eta = rate > 0 ? Double(max(0, total - done)) / rate : 0
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 1
        if interactive {
            let width = 30
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            FileHandle.standardError.write(Data(String(format: "\r%@ %d/%d docs  %.0f docs/s  ETA %.0fs ", bar, done, total, rate, eta).utf8))
        } else {
            FileHandle.standardError.write(Data(String(format: "reindex progress: %d/%d documents (%.0f%%), %.0f docs/s, ETA %.0fs\n", done, total, fraction * 100, rate, eta).utf8))
        }
    }

    func finish() {
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

extension String {
    func ifEmpty(_ replacement: String) -> String { isEmpty ? replacement : self }
}
