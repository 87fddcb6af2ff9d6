import ElasticsearchClient
import JSONSupport
import Logging
import LibPQClient

/// Streams every order into an index in keyset-paginated batches (memory does not
/// grow with the table), with external versions so that it overlaps with live
/// indexing safely.
///
/// Each page is read in its own short read-only transaction; nothing stays open
/// while Elasticsearch is called (guarantee 6). Why no single snapshot is needed:
/// a page read at time t holds every change committed before t, and every change
/// committed after the target started receiving live writes (the alias itself, or a
/// reindex's catch-up alias registered before the load began) is written there by
/// the indexers. External versions keep whichever document is newer, so pages
/// read at different times and live writes may interleave in any order.
public struct FullLoader: Sendable {
    public let pool: PostgresPool
    public let writer: BulkWriter
    public var batchSize: Int
    /// Bulk requests out at once (see `load`).
    public var requestsInFlight: Int
    let logger: Logger

    public init(pool: PostgresPool, writer: BulkWriter, batchSize: Int = 2000, requestsInFlight: Int = 1, logger: Logger) {
        self.pool = pool
        self.writer = writer
        self.batchSize = batchSize
        self.requestsInFlight = max(1, requestsInFlight)
        self.logger = logger
    }

    public struct Summary: Sendable {
        public var documents = 0
        public var stale = 0
        public var rejected = 0
    }

    /// A document the target refused for good.
    public struct Refused: Sendable {
        public let document: OrderDocument
        public let status: Int
        public let errorType: String?
    }

    /// Number of orders the snapshot will hold (for progress and ETA).
    public func countOrders() async throws -> Int {
        try await pool.query("SELECT count(*) FROM orders").first?.int(0) ?? 0
    }

    /// Loads into `index` (an alias when `throughAlias`); calls `progress` after each batch and
    /// `refused` with each page's refused documents (so they can be kept, in flat memory).
    ///
    /// `requestsInFlight` pages are out at once, and the next page is read while they are out, so
    /// the server never waits for PostgreSQL. More than one matters on a server that live indexers
    /// keep busy too (a reindex beside the live load, see `Reindexer.Options.requestsInFlight`).
    public func load(into index: String, throughAlias: Bool, progress: @Sendable (Int) -> Void = { _ in },
                     refused: ([Refused]) async throws -> Void = { _ in }) async throws -> Summary {
        var summary = Summary()
        try await withThrowingTaskGroup(of: (documents: [OrderDocument], outcomes: [BulkItemOutcome]).self) { requests in
            var next = try await page(after: nil), out = 0  // `next` is read ahead, while requests are out
            while true {
                while out < requestsInFlight, let last = next.last {
                    let documents = next
                    requests.addTask { (documents, try await write(documents, into: index, throughAlias: throughAlias)) }
                    out += 1
                    next = try await page(after: last.orderID)
                }
                guard let (documents, outcomes) = try await requests.next() else { break }
                out -= 1
                let refusedHere = try tally(outcomes, of: documents, into: &summary)
                if !refusedHere.isEmpty { try await refused(refusedHere) }
                progress(summary.documents + summary.rejected)
            }
        }
        return summary
    }

    /// Counts one page's outcomes; returns the documents the target refused for good.
    private func tally(_ outcomes: [BulkItemOutcome], of documents: [OrderDocument], into summary: inout Summary) throws -> [Refused] {
        try outcomes.throwIfRefused()
        var refusedHere: [Refused] = []
        for (document, outcome) in zip(documents, outcomes) {
            switch outcome {
            case .applied: summary.documents += 1
            case .stale: summary.stale += 1; summary.documents += 1
            case .rejected(let status, let type): refusedHere.append(Refused(document: document, status: status, errorType: type))
            case .indexMissing, .retry, .refused: throw LoadError.indexVanished
            }
        }
        summary.rejected += refusedHere.count
        return refusedHere
    }

    /// One keyset page, in its own short read-only transaction.
    private func page(after cursor: String?) async throws -> [OrderDocument] {
        let batchSize = self.batchSize
        return try await pool.transaction(isolation: .repeatableReadReadOnly) {
            try OrderDocumentSource.page(after: cursor, limit: batchSize, on: $0)
        }
    }

    /// One page, in requests of at most `BulkSizing.maxRequestBytes`; the outcomes in page order.
    private func write(_ documents: [OrderDocument], into index: String, throughAlias: Bool) async throws -> [BulkItemOutcome] {
        var outcomes: [BulkItemOutcome] = []
        for group in BulkSizing.groups(documents, maxBytes: BulkSizing.maxRequestBytes) {
            outcomes += try await writer.write({ include in
                var request = BulkRequest()
                for (i, document) in group.enumerated() where include(i) {
                    request.index(index, id: document.orderID, version: document.externalVersion, requireAlias: throughAlias) {
                        document.writeJSON(into: &$0)
                    }
                }
                return request
            }, count: group.count)
        }
        return outcomes
    }

    public enum LoadError: Error, CustomStringConvertible {
        case indexVanished
        public var description: String { "the target index disappeared during the load" }
    }
}
