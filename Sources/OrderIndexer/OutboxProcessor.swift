import ElasticsearchClient
import Foundation
import JSONSupport
import Logging
import Metrics
import LibPQClient
import OrderStore
import ReadModel

/// Claims a batch of outbox events, indexes the documents they affect and
/// deletes the events in the same transaction once Elasticsearch acknowledged.
///
/// Why this is gap-safe and multi-worker safe: rows are claimed with
/// `FOR UPDATE SKIP LOCKED` and deleted, never skipped by an offset, so a
/// transaction that commits after later-numbered ones simply has its rows
/// claimed later. A crash rolls the claim back and the rows return. Documents
/// are rebuilt from the current database state and written with external
/// versions, so duplicates and reordering between workers are harmless.
public struct OutboxProcessor: Sendable {
    public struct Configuration: Sendable {
        public var batchSize = 500
        /// Orders per bulk request when a customer change fans out.
        public var fanOutChunk = 500
        public init() {}
    }

    let pool: PostgresPool
    let writer: BulkWriter
    let layout: IndexLayout
    let configuration: Configuration
    let logger: Logger

    public init(pool: PostgresPool, writer: BulkWriter, layout: IndexLayout, configuration: Configuration, logger: Logger) {
        self.pool = pool
        self.writer = writer
        self.layout = layout
        self.configuration = configuration
        self.logger = logger
    }

    struct ClaimedEvent {
        let id: Int64
        let aggregateType: String
        let aggregateID: String
        let aggregateVersion: Int
        let eventType: String
        let occurredAtMs: Int64
        let createdAtUs: Int64
    }

    public enum ProcessError: Error, CustomStringConvertible {
        /// The alias is gone (an empty cluster): the claim was rolled back.
        case indexMissing
        public var description: String { "the order index is missing" }
    }

    static let claimSQL = """
        DELETE FROM outbox WHERE id IN (
            SELECT id FROM outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
        RETURNING id, aggregate_type, aggregate_id, aggregate_version, event_type,
                  \(SQL.ms("occurred_at")), \(SQL.us("created_at", as: "created_at_us"))
        """

    /// Processes one batch; returns the number of events it consumed (0 when the outbox was empty).
    public func processBatch() async throws -> Int {
        try await pool.withReservedConnection { connection in
            try await connection.execute("BEGIN")
            do {
                let count = try await process(on: connection)
                try await connection.execute("COMMIT")
                return count
            } catch {
                try? await connection.execute("ROLLBACK")
                throw error
            }
        }
    }

    private func process(on connection: ReservedConnection) async throws -> Int {
        let events = try await claim(on: connection)
        guard !events.isEmpty else { return 0 }
        // Extra targets (a reindex's new index). FOR SHARE: a reindex that drops
        // a target waits until this batch is done with it.
        let shadows = try await connection.query("SELECT index_name FROM index_targets ORDER BY index_name FOR SHARE").map { $0.string(0)! }
        let orderEvents = events.filter { $0.aggregateType == "order" }
        let customerEvents = events.filter { $0.aggregateType != "order" }
        let rejected = try await indexOrders(of: orderEvents, shadows: shadows, on: connection)
            + fanOutCustomerChanges(customerEvents, shadows: shadows, on: connection)
        for (event, rejection) in rejected { try await deadLetter(event, rejection, on: connection) }
        recordAcknowledged(events)
        return events.count
    }

    private func claim(on connection: ReservedConnection) async throws -> [ClaimedEvent] {
        try await connection.query(Self.claimSQL, [configuration.batchSize]).map {
            ClaimedEvent(id: $0.int64("id")!, aggregateType: $0.string("aggregate_type")!, aggregateID: $0.string("aggregate_id")!,
                         aggregateVersion: $0.int("aggregate_version")!, eventType: $0.string("event_type")!,
                         occurredAtMs: $0.int64("occurred_at")!, createdAtUs: $0.int64("created_at_us")!)
        }
    }

    /// Re-indexes each order named by the events once; returns the events whose document was refused.
    private func indexOrders(of events: [ClaimedEvent], shadows: [String], on connection: ReservedConnection) async throws
        -> [(ClaimedEvent, Rejection)]
    {
        var orderIDs: [String] = []
        var eventsByOrder: [String: [ClaimedEvent]] = [:]
        for event in events {
            if eventsByOrder[event.aggregateID] == nil { orderIDs.append(event.aggregateID) }
            eventsByOrder[event.aggregateID, default: []].append(event)
        }
        var rejected: [(ClaimedEvent, Rejection)] = []
        for chunk in orderIDs.chunked(configuration.fanOutChunk) {
            for rejection in try await index(ids: Array(chunk), shadows: shadows, on: connection) {
                for event in eventsByOrder[rejection.orderID] ?? [] { rejected.append((event, rejection)) }
            }
        }
        return rejected
    }

    /// A customer change re-indexes every order of that customer, in chunks (the latest event per customer).
    private func fanOutCustomerChanges(_ events: [ClaimedEvent], shadows: [String], on connection: ReservedConnection) async throws
        -> [(ClaimedEvent, Rejection)]
    {
        var rejected: [(ClaimedEvent, Rejection)] = []
        for event in Dictionary(grouping: events, by: \.aggregateID).values.compactMap({ $0.max { $0.id < $1.id } }) {
            var after: String?
            while true {
                let cursor = after
                let ids = try await connection.run {
                    try OrderDocumentSource.orderIDs(ofCustomer: event.aggregateID, after: cursor, limit: configuration.fanOutChunk, on: $0)
                }
                guard let last = ids.last else { break }
                if let rejection = try await index(ids: ids, shadows: shadows, on: connection).first {
                    rejected.append((event, rejection))
                }
                after = last
            }
        }
        return rejected
    }

    /// Keeps the document Elasticsearch refused: what one needs to see why.
    private func deadLetter(_ event: ClaimedEvent, _ rejection: Rejection, on connection: ReservedConnection) async throws {
        try await connection.query(
            """
            INSERT INTO dead_letters (aggregate_type, aggregate_id, aggregate_version, event_type, payload, occurred_at, error_status, error_type)
            VALUES ($1, $2, $3, $4, $5::jsonb, \(SQL.ts(6)), $7, $8)
            """,
            [event.aggregateType, event.aggregateID, event.aggregateVersion, event.eventType, rejection.document, event.occurredAtMs,
             rejection.status, rejection.errorType]
        )
        Counter(label: "indexer_dead_letters_total").increment()
        logger.error("document rejected; event dead-lettered", metadata: [
            "order.aggregate_id": "\(event.aggregateID)", "es.status": "\(rejection.status)", "es.error_type": "\(rejection.errorType ?? "-")",
        ])
    }

    /// Acknowledged: how long each event took from its commit.
    private func recordAcknowledged(_ events: [ClaimedEvent]) {
        let nowUs = Int64(Date().timeIntervalSince1970 * 1_000_000)
        let lagTimer = Timer(label: "indexer_commit_to_ack_seconds")
        for event in events { lagTimer.recordNanoseconds(max(0, nowUs - event.createdAtUs) * 1000) }
        Counter(label: "indexer_events_total").increment(by: events.count)
    }

    struct Rejection {
        let orderID: String
        let status: Int
        let errorType: String?
        let document: String
    }

    /// Indexes the current documents of `ids` into the alias and every shadow target;
    /// returns the documents Elasticsearch rejected permanently.
    private func index(ids: [String], shadows: [String], on connection: ReservedConnection) async throws -> [Rejection] {
        let documents = try await connection.run { try OrderDocumentSource.documents(ids: ids, on: $0) }
        guard !documents.isEmpty else { return [] }
        let targets = [(layout.alias, true)] + shadows.map { ($0, false) }
        let itemCount = documents.count * targets.count
        let outcomes = try await writer.write({ include in
            var request = BulkRequest()
            var position = 0
            for (target, isAlias) in targets {
                for document in documents {
                    if include(position) {
                        request.index(target, id: document.orderID, version: document.externalVersion, requireAlias: isAlias) {
                            document.writeJSON(into: &$0)
                        }
                    }
                    position += 1
                }
            }
            return request
        }, count: itemCount)
        var rejected: [Rejection] = []
        for (position, outcome) in outcomes.enumerated() {
            let document = documents[position % documents.count]
            switch outcome {
            case .applied, .stale: continue
            case .indexMissing where position < documents.count: throw ProcessError.indexMissing
            case .indexMissing: continue  // a shadow index a failed reindex already dropped
            case .rejected(let status, let type) where position < documents.count:
                var json = JSONWriter()
                document.writeJSON(into: &json)
                rejected.append(Rejection(orderID: document.orderID, status: status, errorType: type, document: json.string))
            case .rejected: continue
            case .retry: continue
            }
        }
        Counter(label: "indexer_documents_indexed_total").increment(by: documents.count)
        return rejected
    }
}

extension Array {
    func chunked(_ size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}

