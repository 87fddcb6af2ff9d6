import Foundation
import ElasticsearchClient
import Logging
import Metrics
import OrderStore
import LibPQClient
import ReadModel
import RetryPolicy
import ServiceLifecycle
import Synchronization

/// The `order-indexer` process's work: several outbox workers woken by NOTIFY
/// (with polling as the fallback), a watchdog that rebuilds the index from
/// PostgreSQL when it disappears, and a sampler for backlog and lag gauges.
public struct IndexerService: Service {
    public struct Configuration: Sendable {
        public var workers = 2
        public var pollInterval: Duration = .seconds(1)
        /// After a wake-up, lets a burst of commits gather into one batch
        /// ("batch by time"), claimed by one worker (`BatchGathering`). Zero by default: under
        /// load batches fill by count anyway, and at low rates every millisecond is latency.
        public var batchDelay: Duration = .zero
        public var aliasCheckInterval: Duration = .seconds(5)
        public var processor = OutboxProcessor.Configuration()
        /// Documents per bulk request of the self-heal rebuild (`INDEXER_REBUILD_BATCH_SIZE`).
        public var rebuildBatchSize = BulkSizing.documentsPerLoadRequest
        /// On SIGTERM, how long workers may take to finish the batch in hand; what is still
        /// unfinished then is handed back for another indexer (guarantee 7).
        public var stopGrace: Duration = .seconds(8)
        /// No transaction or statement of the indexer lasts longer (`INDEXER_MAX_TRANSACTION_MS`, at most 60 s).
        public var maxTransaction: Duration = .seconds(30)
        public init() {}
    }

    let pool: PostgresPool
    let client: ElasticsearchClient
    let layout: IndexLayout
    let configuration: Configuration
    let databaseURL: String
    let logger: Logger
    /// A self-heal rebuild is under way (here or in another indexer): workers wait, so the
    /// search server spends itself on the rebuild's large requests, not on small live ones.
    /// The events wait in the outbox and drain in large batches once the rebuild is done.
    let rebuilding = Flag()
    /// After a failed batch, no worker of this process claims before this instant: the events it
    /// handed back (with a NOTIFY) should go to a healthier indexer, not to this one's next worker.
    let claimPause = ClaimPause()
    /// Set when a batch failed at the cluster: before claiming again, a worker asks the cluster
    /// for the alias, and claims only once that answers. An indexer whose way to the cluster is
    /// broken (a node down, a proxy answering 503) would otherwise take new events after every
    /// backoff and hold each batch for its hand-back time while a healthy indexer could index it.
    let clusterSuspect = Flag()

    public init(pool: PostgresPool, client: ElasticsearchClient, layout: IndexLayout, databaseURL: String,
                configuration: Configuration = .init(), logger: Logger) {
        self.pool = pool
        self.client = client
        self.layout = layout
        self.databaseURL = databaseURL
        self.configuration = configuration
        self.logger = logger
        writer = BulkWriter(client: client, window: ConcurrencyWindow(maximum: configuration.workers), probeIndex: layout.alias, logger: logger)
        leaseKeeper = LeaseKeeper(lease: configuration.processor.lease)
    }

    /// One for the process, so all its workers learn the cluster's latency together (`AdaptiveTimeout`)
    /// and how many of them may have a request out (`ConcurrencyWindow`).
    let writer: BulkWriter

    /// Names a worker in its leases: host, process and a random part, so two starts never share a name.
    static let instance = "\(ProcessInfo.processInfo.hostName)/\(ProcessInfo.processInfo.processIdentifier)/\(UInt32.random(in: 0...UInt32.max))"

    /// Renews the leases of every worker's batch in hand; runs beside the workers.
    let leaseKeeper: LeaseKeeper

    func processor(worker: Int, ackTimings: AckTimingsLog?) -> OutboxProcessor {
        OutboxProcessor(pool: pool, writer: writer, layout: layout, configuration: configuration.processor,
                        owner: "\(Self.instance)/\(worker)", keeper: leaseKeeper, ackTimings: ackTimings, logger: logger)
    }

    public func run() async throws {
        if let info = try? await client.clusterInfo() {
            logger.info("search cluster", metadata: ["es.flavour": "\(info.flavour.rawValue)", "es.version": "\(info.version)"])
        }
        // Waits end up to a quarter of the polling interval late; the ticker wakes four times per interval.
        let wake = WakeSignal(tick: configuration.pollInterval / 4)
        let stopping = Flag()
        let listener = PostgresListener(connectionString: databaseURL, channel: "outbox", logger: logger)
        await withDiscardingTaskGroup { background in
            background.addTask {
                for await _ in listener.notifications() { wake.signal() }
            }
            background.addTask { await self.watchAlias(wake: wake) }
            background.addTask { await self.sampleBacklog() }
            background.addTask { await self.leaseKeeper.run() }
            await runWorkers(wake: wake, stopping: stopping)
            await listener.stop()
            background.cancelAll()
        }
        logger.info("indexer stopped")
    }

    /// Runs the workers until a graceful shutdown; then they take no new batch and finish the one
    /// in hand, for up to `stopGrace`, after which the rest is cancelled and handed back.
    private func runWorkers(wake: WakeSignal, stopping: Flag) async {
        let ackTimings = AckTimingsLog(path: configuration.processor.ackTimingsPath)
        let gathering = BatchGathering(wake: wake, delay: configuration.batchDelay, pollInterval: configuration.pollInterval)
        await withTaskGroup(of: Bool.self) { workers in
            for worker in 0..<configuration.workers {
                workers.addTask { await self.work(worker, wake: wake, gathering: gathering, stopping: stopping, ackTimings: ackTimings); return false }
            }
            try? await gracefulShutdown()
            logger.info("stopping: finishing the batches in hand")
            stopping.set()
            wake.signalAll()
            let grace = configuration.stopGrace
            workers.addTask { try? await Task.sleep(for: grace); return true }
            var running = configuration.workers
            while running > 0, let graceOver = await workers.next() {
                if graceOver {
                    logger.warning("batches still running after the stop grace; handing them back")
                    workers.cancelAll()
                } else {
                    running -= 1
                }
            }
            workers.cancelAll()
        }
    }

    private func work(_ worker: Int, wake: WakeSignal, gathering: BatchGathering, stopping: Flag, ackTimings: AckTimingsLog?) async {
        var logger = self.logger
        logger[metadataKey: "indexer.worker"] = "\(worker)"
        let processor = processor(worker: worker, ackTimings: ackTimings)
        var sizer = BatchSizer(normal: configuration.processor.batchSize, backlog: configuration.processor.backlogBatchSize,
                               fanOutChunk: configuration.processor.fanOutChunk, maxRequestBytes: configuration.processor.maxBulkBytes)
        let levelGauge = Gauge(label: "indexer_bulk_request_level", dimensions: [("worker", "\(worker)")])
        var level = sizer.tuner.level
        levelGauge.record(level)
        var failures = 0
        var notified = false  // the last wait ended with a notification, not the polling interval
        while !Task.isCancelled, !stopping.isSet {
            let generation = wake.generation
            if rebuilding.isSet {
                try? await Task.sleep(for: configuration.pollInterval)
                continue
            }
            if let remaining = claimPause.remaining {
                try? await Task.sleep(for: remaining)
                continue  // asked to stop meanwhile, or a rebuild began: the loop checks again
            }
            if clusterSuspect.isSet {
                guard await clusterAnswers() else {
                    failures += 1
                    let delay = Backoff.batch.delay(attempt: failures)
                    claimPause.extend(to: .now + delay)
                    continue
                }
            }
            if let window = writer.window, worker >= window.limit {
                // The cluster is falling behind: fewer requests out, so each finishes within its
                // timeout. The events stay in the outbox for the workers allowed to claim. A notification
                // woke this worker rather than one of those (the window shrank while it waited): it is
                // passed on, or the event would wait for their polling interval.
                if notified { wake.signal() }
                notified = false
                try? await Task.sleep(for: configuration.pollInterval)
                continue
            }
            notified = false
            do {
                let limit = sizer.next, started = ContinuousClock.now
                let batch = try await processor.processBatch(limit: limit, requests: sizer.requests)
                let processed = batch.events
                sizer.completed(processed, documents: batch.documents, duration: .now - started)
                if sizer.tuner.level != level {
                    level = sizer.tuner.level
                    levelGauge.record(level)
                    logger.info("bulk requests resized under a backlog", metadata: [
                        "indexer.request_level": "\(level)", "indexer.request_bytes": "\(sizer.requests.bytes)",
                        "indexer.backlog_batch": "\(sizer.backlog)",
                    ])
                }
                failures = 0
                // A full batch means a backlog: claim again at once. A partial one took every event
                // claimable when it claimed (rows another worker was claiming are that worker's),
                // so the next claim waits for a notification (none missed: one that came meanwhile
                // woke a waiting worker, which claims the event, or changed the generation seen
                // before the claim) or the polling interval.
                if processed >= limit { continue }
                notified = await gathering.waitForEvents(after: generation, stopping: stopping)
            } catch is CancellationError {
                return
            } catch OutboxProcessor.ProcessError.indexMissing {
                logger.warning("order index missing; rebuilding")
                await rebuildIfMissing()
                try? await Task.sleep(for: .milliseconds(200))
            } catch {
                // The batch was handed back; backing off lets healthier workers take it meanwhile.
                failures += 1
                sizer.failed(error)
                Counter(label: "indexer_batches_handed_back_total", dimensions: [("reason", Self.handBackReason(error))]).increment()
                logger.warning("batch failed; handed back, will retry",
                               metadata: ["error": "\(error)", "indexer.failures": "\(failures)", "indexer.next_batch": "\(sizer.next)"])
                let delay = Backoff.batch.delay(attempt: failures)
                claimPause.extend(to: .now + delay)
                if error is BulkWriter.GaveUp || error is ElasticsearchError || error is WritesRefused { clusterSuspect.set() }
                try? await Task.sleep(for: delay)
            }
        }
    }

    /// Whether the cluster answers a read of the alias; clears `clusterSuspect` when it does.
    private func clusterAnswers() async -> Bool {
        guard (try? await client.aliasTargets(layout.alias)) != nil else { return false }
        clusterSuspect.set(false)
        return true
    }

    /// Why a batch was handed back, for `indexer_batches_handed_back_total`: operators (and soaks)
    /// tell a busy cluster from a failing one or from the database.
    static func handBackReason(_ error: any Error) -> String {
        switch error {
        case let gaveUp as BulkWriter.GaveUp: "cluster_\(gaveUp.lastAttempt.rawValue)"
        case is ElasticsearchError: "cluster_refused"
        case is WritesRefused: "cluster_forbidden"
        case let database as LibPQError: "database_\(database.code)"
        default: "other"
        }
    }

    private func watchAlias(wake: WakeSignal) async {
        while !Task.isCancelled {
            await rebuildIfMissing()
            try? await Task.sleep(for: configuration.aliasCheckInterval)
        }
    }

    private func sampleBacklog() async {
        let backlog = Gauge(label: "indexer_outbox_backlog")
        let lag = Gauge(label: "indexer_lag_seconds")
        while !Task.isCancelled {
            if let now = try? await OutboxBacklog.read(pool) {
                backlog.record(Double(now.events))
                lag.record(now.oldestAgeSeconds)
            }
            try? await Task.sleep(for: .seconds(2))
        }
    }
}

/// An instant before which this process's workers claim nothing (see `claimPause`).
final class ClaimPause: Sendable {
    private let until = Mutex(ContinuousClock.Instant.now)
    var remaining: Duration? {
        let left = until.withLock { $0 } - .now
        return left > .zero ? left : nil
    }
    func extend(to instant: ContinuousClock.Instant) { until.withLock { $0 = max($0, instant) } }
}

/// A yes/no shared between the indexer's tasks (asked to stop; a rebuild under way).
final class Flag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set(_ on: Bool = true) { value.withLock { $0 = on } }
}
