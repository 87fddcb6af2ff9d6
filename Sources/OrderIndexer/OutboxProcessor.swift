import ElasticsearchClient
import Foundation
import JSONSupport
import Logging
import Metrics
import LibPQClient
import OrderStore
import ReadModel

/// Claims a batch of outbox events by lease, indexes the documents they affect
/// and deletes the events once Elasticsearch acknowledged. No PostgreSQL
/// transaction is open while Elasticsearch is called (guarantee 6); why nothing
/// is lost or goes backwards is argued on `OutboxLease`.
///
/// Order events are acknowledged first; then each changed customer's orders are
/// re-indexed in chunks, each chunk's progress recorded on the event, so a fan-out
/// over 100,000 orders neither holds anything open nor starts again after a crash,
/// and other workers go on with newer events meanwhile.
public struct OutboxProcessor: Sendable {
    public struct Configuration: Sendable {
        /// Events claimed per batch while the outbox keeps up (`INDEXER_BATCH_SIZE`): small
        /// batches, small bulk requests, low lag.
        public var batchSize = 500
        /// Events claimed per batch once a batch came back full, i.e. under a backlog
        /// (`INDEXER_BACKLOG_BATCH_SIZE`): fewer, larger bulk requests drain faster
        /// (`BulkSizing` says how large, and why). A starting size: it grows with the requests' bytes
        /// while the cluster indexes faster for it (`RequestSizeTuner`).
        public var backlogBatchSize = BulkSizing.documentsPerLargeRequest
        /// Upper bound of one bulk request's body (`INDEXER_MAX_BULK_BYTES`): requests start at
        /// `BulkSizing.maxRequestBytes` (or this, if smaller) and grow up to it under a backlog.
        public var maxBulkBytes = BulkSizing.largestRequestBytes
        /// Orders re-indexed (and progress recorded) per step when a customer change fans out
        /// (`INDEXER_FAN_OUT_CHUNK`): a customer's orders are spread over the whole index, so as
        /// large as a backlog batch, and growing with it; a worker whose requests timed out uses
        /// smaller chunks.
        public var fanOutChunk = BulkSizing.documentsPerLargeRequest
        /// `INDEXER_ACK_TIMINGS`: a file for per-event commit and acknowledgement times (`AckTimingsLog`).
        public var ackTimingsPath: String?
        /// How long claimed events stay this worker's without a renewal (`INDEXER_LEASE_MS`).
        public var lease: Duration = .seconds(30)
        /// A batch Elasticsearch has not acknowledged by then is handed back for any worker to take
        /// (`INDEXER_HAND_BACK_MS`), so one sick indexer cannot hold events hostage for long.
        public var handBackAfter: Duration = .seconds(10)
        public init() {}
    }

    let pool: PostgresPool
    let writer: BulkWriter
    let layout: IndexLayout
    let configuration: Configuration
    let lease: OutboxLease
    let keeper: LeaseKeeper
    let ackTimings: AckTimingsLog?
    let logger: Logger

    /// `owner` names this worker in the leases it takes; unique per worker and process start.
    /// `keeper` renews the leases of the batches in hand (one for the process, run beside its workers).
    init(pool: PostgresPool, writer: BulkWriter, layout: IndexLayout, configuration: Configuration, owner: String,
         keeper: LeaseKeeper, ackTimings: AckTimingsLog? = nil, logger: Logger) {
        self.pool = pool
        self.writer = writer
        self.layout = layout
        self.configuration = configuration
        self.lease = OutboxLease(pool: pool, owner: owner, duration: configuration.lease, alias: layout.alias)
        self.keeper = keeper
        self.ackTimings = ackTimings
        self.logger = logger
    }

    public enum ProcessError: Error, CustomStringConvertible {
        /// The alias is gone (an empty cluster): the events were handed back.
        case indexMissing
        public var description: String { "the order index is missing" }
    }

    /// What one batch did.
    public struct BatchResult: Sendable, Equatable {
        /// Events claimed (0 when nothing was claimable).
        public var events = 0
        /// Documents sent to the cluster, a changed customer's orders included.
        public var documents = 0
    }

    /// Processes one batch of at most `limit` events in requests within `requests`. On any failure,
    /// what was not acknowledged is handed back first. A customer change fans out in chunks of
    /// `requests.fanOutChunk` orders: a worker whose requests timed out (`BatchSizer.ceiling`) sends a
    /// busy cluster smaller fan-out requests as well, but one without a backlog still re-indexes a
    /// large customer in large chunks.
    public func processBatch(limit: Int, requests: RequestSize) async throws -> BatchResult {
        let (events, prefetched) = try await claimWithDocuments(limit: limit)
        guard !events.isEmpty else { return BatchResult() }
        var progress = Progress(unacknowledged: Set(events.map(\.id)), requests: requests)
        do {
            try await keeper.holding(events.map(\.id), by: lease) {
                try await indexAndAcknowledge(events, prefetched: prefetched, progress: &progress)
            }
        } catch {
            await handBack(progress.unacknowledged.sorted(), pause: (error as? BulkWriter.GaveUp)?.resendAfter)
            throw error
        }
        return BatchResult(events: events.count, documents: progress.documents)
    }

    /// A batch under way: its limits, what is still to acknowledge, and what it has sent.
    struct Progress {
        var unacknowledged: Set<Int64>
        let requests: RequestSize
        var documents = 0
    }

    /// Claims, and reads the claimed order events' documents, in one visit to the pool: one
    /// hand-off to a libpq thread and back instead of two. At a few hundred events per second a
    /// batch holds an event or two, and its latency is mostly such hand-offs (`bench lag --null-sink`).
    /// The read follows the claim's commit, as the argument on `OutboxLease` needs. A failed read
    /// leaves the documents to `index`, inside the hand-back's reach, so the claim is not stranded.
    private func claimWithDocuments(limit: Int) async throws -> ([ClaimedEvent], [String: OrderDocument]) {
        let lease = self.lease
        return try await pool.withConnection { connection in
            let claim = try lease.claim(limit: limit, on: connection)
            var seen = Set<String>()
            let ids = claim.filter { $0.isOrderEvent && seen.insert($0.aggregateID).inserted }.map(\.aggregateID)
            // A large claim's documents are read a part at a time as its requests are built (`index`).
            let prefetch = !ids.isEmpty && ids.count <= BulkSizing.documentsPerRead
            let documents = prefetch ? (try? OrderDocumentSource.documents(ids: ids, on: connection)) ?? [] : []
            return (claim, Dictionary(documents.map { ($0.orderID, $0) }, uniquingKeysWith: { $1 }))
        }
    }

    /// Order events and small customers' changes in rounds, each acknowledged once indexed, then
    /// large customers' changes chunk by chunk; removes from `progress.unacknowledged` what it acknowledged.
    ///
    /// Order events name their order. A customer change with fewer orders than a fan-out chunk joins
    /// the current round while it holds fewer than `progress.requests.documents`, and else the round is
    /// indexed and the next one starts: small customers share requests instead of costing one each,
    /// since a search server charges per request, and only one round's ids are held at a time. (A
    /// 30-minute soak, before rounds: 831 small customers' changes claimed behind 5,000 order events
    /// were sent one request each, and a hand-back every few customers brought them back to the next
    /// claim, behind its order events again: 28 claims each.)
    private func indexAndAcknowledge(_ events: [ClaimedEvent], prefetched: [String: OrderDocument], progress: inout Progress) async throws {
        var round = Round()
        for event in events where event.isOrderEvent {
            round.add(event.aggregateID, for: event)
            round.events.append(event)
        }
        var inChunks: [[ClaimedEvent]] = []
        for changes in Self.groupedByCustomer(events.filter { !$0.isOrderEvent }) {
            let latest = changes[changes.count - 1]
            guard changes.allSatisfy({ $0.fanOutAfter == nil }),
                  let orderIDs = try await fewOrders(ofCustomer: latest.aggregateID, limit: progress.requests.fanOutChunk) else {
                inChunks.append(changes)  // a large customer, or a fan-out already under way
                continue
            }
            if !round.orderIDs.isEmpty, round.orderIDs.count + orderIDs.count > progress.requests.documents {
                try await complete(round, prefetched: prefetched, progress: &progress)
                round = Round()
            }
            for id in orderIDs { round.add(id, for: latest) }
            round.events += changes
        }
        try await complete(round, prefetched: prefetched, progress: &progress)
        // Customers with many orders: chunk by chunk, resumable.
        for changes in inChunks {
            if try await fanOut(changes, progress: &progress) { recordAcknowledged(changes, answeredAtUs: Self.nowMicroseconds()) }
            progress.unacknowledged.subtract(changes.map(\.id))
        }
    }

    /// Events indexed as one set of bulk requests and acknowledged together.
    struct Round {
        /// Every order to index in this round, each once, in first-seen order.
        var orderIDs: [String] = []
        /// The events each order's document answers (for dead letters).
        var eventsByOrder: [String: [ClaimedEvent]] = [:]
        /// Events acknowledged once `orderIDs` are indexed.
        var events: [ClaimedEvent] = []

        mutating func add(_ orderID: String, for event: ClaimedEvent) {
            if eventsByOrder[orderID] == nil { orderIDs.append(orderID) }
            eventsByOrder[orderID, default: []].append(event)
        }
    }

    /// The customer's order ids when it has fewer than `limit` (a fan-out chunk) orders; nil otherwise.
    private func fewOrders(ofCustomer customer: String, limit: Int) async throws -> [String]? {
        let orderIDs = try await pool.withConnection { try OrderDocumentSource.orderIDs(ofCustomer: customer, after: nil, limit: limit, on: $0) }
        return orderIDs.count < limit ? orderIDs : nil
    }

    /// Indexes a round's orders, then acknowledges its events (dead-lettering those whose document was refused).
    private func complete(_ round: Round, prefetched: [String: OrderDocument], progress: inout Progress) async throws {
        guard !round.events.isEmpty else { return }
        let rejected = try await index(ids: round.orderIDs, prefetched: prefetched, progress: &progress).flatMap { rejection in
            (round.eventsByOrder[rejection.orderID] ?? []).map { ($0, rejection) }
        }
        let answered = Self.nowMicroseconds()
        try await lease.acknowledge(round.events.map(\.id), deadLetters: rejected)
        recordDeadLetters(rejected)
        progress.unacknowledged.subtract(round.events.map(\.id))
        recordAcknowledged(round.events, answeredAtUs: answered)
    }

    /// Hands unacknowledged events back for any worker to claim, at once or after `pause`. Runs in a
    /// task of its own, so it also happens when this batch was cancelled (a stop that could not wait).
    private func handBack(_ ids: [Int64], pause: Duration?) async {
        guard !ids.isEmpty else { return }
        let lease = self.lease, logger = self.logger
        await Task {
            do { try await lease.release(ids, pause: pause) } catch {
                logger.warning("could not hand events back; their lease will lapse", metadata: ["error": "\(error)"])
            }
        }.value
    }

    private var giveUpAt: ContinuousClock.Instant { .now + configuration.handBackAfter }

    /// One customer's claimed changes, oldest first; customers in the order of their first event.
    static func groupedByCustomer(_ events: [ClaimedEvent]) -> [[ClaimedEvent]] {
        var order: [String] = []
        var groups: [String: [ClaimedEvent]] = [:]
        for event in events {
            if groups[event.aggregateID] == nil { order.append(event.aggregateID) }
            groups[event.aggregateID, default: []].append(event)
        }
        return order.map { groups[$0]! }
    }

    /// Re-indexes every order of the customer, `progress.requests.fanOutChunk` at a time from where an earlier
    /// attempt stopped, renewing the lease and recording progress after each acknowledged chunk. Returns
    /// false when another worker took the events over (it goes on from the recorded progress).
    private func fanOut(_ changes: [ClaimedEvent], progress: inout Progress) async throws -> Bool {
        let latest = changes[changes.count - 1]
        let ids = changes.map(\.id)
        var after = latest.fanOutAfter
        while true {
            // A newer change of the customer fans out over every order anyway: stop here. A customer
            // renamed twice in a row re-indexes its 100,000 orders once more, not twice more.
            if try await lease.newerChangeQueued(ofCustomer: latest.aggregateID, than: latest.id) {
                logger.info("customer fan-out superseded by a newer change", metadata: ["customer.id": "\(latest.aggregateID)"])
                Counter(label: "indexer_fan_outs_superseded_total").increment()
                break
            }
            let cursor = after, limit = progress.requests.fanOutChunk
            let orderIDs = try await pool.withConnection {
                try OrderDocumentSource.orderIDs(ofCustomer: latest.aggregateID, after: cursor, limit: limit, on: $0)
            }
            guard let last = orderIDs.last else { break }
            let rejected = try await index(ids: orderIDs, progress: &progress)
            try await lease.acknowledge([], deadLetters: rejected.map { (latest, $0) })
            recordDeadLetters(rejected.map { (latest, $0) })
            guard try await lease.renew(ids, progress: (latest.id, last)) else {
                logger.info("customer fan-out taken over by another worker", metadata: ["customer.id": "\(latest.aggregateID)"])
                Counter(label: "indexer_fan_outs_taken_over_total").increment()
                return false
            }
            Counter(label: "indexer_fan_out_chunks_total").increment()
            after = last
        }
        try await lease.acknowledge(ids)
        return true
    }

    /// Refused documents are kept (`dead_letters`) and counted; the log names the order, never the document.
    private func recordDeadLetters(_ rejected: [(ClaimedEvent, Rejection)]) {
        guard !rejected.isEmpty else { return }
        Counter(label: "indexer_dead_letters_total").increment(by: rejected.count)
        for (event, rejection) in rejected {
            logger.error("document rejected; event dead-lettered", metadata: [
                "order.id": "\(rejection.orderID)", "event.aggregate_id": "\(event.aggregateID)", "es.status": "\(rejection.status)",
                "es.error_type": "\(rejection.errorType ?? "-")",
            ])
        }
    }

    /// Acknowledged: how long each event took from its commit to the cluster's answer for its
    /// documents (`answeredAtUs`, from which they are searchable after the next refresh); the
    /// timings log also gets the moment the events left the outbox.
    private func recordAcknowledged(_ events: [ClaimedEvent], answeredAtUs: Int64) {
        guard !events.isEmpty else { return }
        let lagTimer = Timer(label: "indexer_commit_to_ack_seconds")
        for event in events { lagTimer.recordNanoseconds(max(0, answeredAtUs - event.createdAtUs) * 1000) }
        ackTimings?.append(commitMicroseconds: events.map(\.createdAtUs), acknowledgedMicroseconds: answeredAtUs,
                           doneMicroseconds: Self.nowMicroseconds())
        Counter(label: "indexer_events_total").increment(by: events.count)
    }

    /// Wall-clock microseconds since the epoch: events carry PostgreSQL's commit time in the same unit.
    static func nowMicroseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1_000_000) }

    /// Indexes the current documents of `ids` into the alias, in bulk requests of at most
    /// `progress.requests.bytes`; returns the documents refused for good, and counts what it sent
    /// in `progress`. (A running reindex copies them into its new index itself: `ReindexChanges`.)
    ///
    /// Memory follows the request size, not the batch's: documents are read `BulkSizing.documentsPerRead`
    /// at a time, written into the request at once, and each full request is sent before more are read.
    private func index(ids: [String], prefetched: [String: OrderDocument] = [:], progress: inout Progress) async throws -> [Rejection] {
        let giveUpAt = self.giveUpAt
        var builder = BulkRequestBuilder(target: layout.alias, requireAlias: true,
                                         maxBytes: progress.requests.bytes, expectedDocuments: ids.count)
        var rejected: [Rejection] = []
        for chunk in ids.chunked(BulkSizing.documentsPerRead) {
            for document in try await documents(chunk, prefetched: prefetched) { builder.add(document) }
            for request in builder.takeFull() { rejected += try await send(request, giveUpAt: giveUpAt) }
        }
        for request in builder.takeAll() { rejected += try await send(request, giveUpAt: giveUpAt) }
        progress.documents += builder.documentCount
        return rejected
    }

    // require_alias (`BulkRequestBuilder`): a write while the alias is missing (an emptied
    // cluster) fails instead of auto-creating a concrete index under the alias's name.
    private func send(_ request: BulkRequest, giveUpAt: ContinuousClock.Instant) async throws -> [Rejection] {
        let outcomes = try await writer.write(request, giveUpAt: giveUpAt)
        Counter(label: "indexer_documents_indexed_total").increment(by: request.count)
        return try Self.rejections(outcomes, of: request)
    }

    /// The current documents of `ids`: those the claim read, and the rest read now.
    private func documents(_ ids: ArraySlice<String>, prefetched: [String: OrderDocument]) async throws -> [OrderDocument] {
        let missing = ids.filter { prefetched[$0] == nil }
        let read = missing.isEmpty ? [] : try await pool.withConnection { try OrderDocumentSource.documents(ids: missing, on: $0) }
        return ids.compactMap { prefetched[$0] } + read
    }

    /// The documents the alias refused for good; a missing alias throws.
    static func rejections(_ outcomes: [BulkItemOutcome], of request: BulkRequest) throws -> [Rejection] {
        try outcomes.throwIfRefused()  // the batch is handed back, not dead-lettered
        var rejected: [Rejection] = []
        for (position, outcome) in outcomes.enumerated() {
            switch outcome {
            case .applied, .stale, .retry, .refused: continue
            case .indexMissing: throw ProcessError.indexMissing
            case .rejected(let status, let type):
                rejected.append(Rejection(orderID: request.ids[position], status: status, errorType: type,
                                          document: String(decoding: request.source(of: position), as: UTF8.self)))
            }
        }
        return rejected
    }
}
