import ElasticsearchClient
import JSONSupport
import Logging
import LibPQClient
import OrderStore

/// Streams every order into an index in keyset-paginated batches (memory does not
/// grow with the table), with external versions so that it overlaps with live
/// indexing safely.
///
/// Each page is read in its own short read-only transaction; nothing stays open
/// while Elasticsearch is called (guarantee 6). Why no single snapshot is needed:
/// a page read at time t holds every change committed before t, and every change
/// committed later reaches the target another way: into the alias, the live
/// indexers write it; into a reindex's new index, the reindex copies it from what
/// the indexers recorded once its registration was in force (`ReindexChanges`,
/// `catchUp`; a page forgets the records of its own orders it saw, whose changes its
/// documents hold). External versions keep whichever document is newer, so pages read
/// at different times and later copies may interleave in any order.
public struct FullLoader: Sendable {
    public let pool: PostgresPool
    public let writer: BulkWriter
    public var batchSize: Int
    /// Bulk requests out at once (see `load`).
    public var requestsInFlight: Int
    /// Awaited before each page is sent: a reindex waits here while live indexing is behind.
    public var beforeEachPage: @Sendable () async throws -> Void = {}
    /// A reindex's registration: the changes live indexers recorded for it on orders that a page
    /// then read are forgotten once the page is acknowledged (`ReindexChanges.covered`), so that
    /// its catch-up copies only what the load did not already hold.
    public var forgettingChangesRecordedFor: String?
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
        public let orderID: String
        /// The order's own version and last change, for the dead letter.
        public let orderVersion: Int
        public let updatedAtMs: Int64
        /// The document as sent.
        public let document: String
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
    /// A page is held as the bytes of its requests only (`BulkRequestBuilder`), not as documents.
    public func load(into index: String, throughAlias: Bool, progress: @Sendable (Int) -> Void = { _ in },
                     refused: ([Refused]) async throws -> Void = { _ in }) async throws -> Summary {
        var summary = Summary()
        try await withThrowingTaskGroup(of: (page: EncodedPage, outcomes: [[BulkItemOutcome]]).self) { requests in
            let target = Target(index: index, throughAlias: throughAlias)
            var next = try await page(after: nil, into: target), out = 0  // `next` is read ahead, while requests are out
            while true {
                while out < requestsInFlight, let last = next.lastOrderID {
                    try await beforeEachPage()
                    let page = next
                    requests.addTask { (page, try await write(page)) }
                    out += 1
                    next = try await self.page(after: last, into: target)
                }
                guard let (page, outcomes) = try await requests.next() else { break }
                out -= 1
                let refusedHere = try tally(outcomes, of: page, into: &summary)
                if !refusedHere.isEmpty { try await refused(refusedHere) }
                if let registration = forgettingChangesRecordedFor {
                    try await ReindexChanges.remove(page.coveredChanges, of: registration, from: pool)
                }
                progress(summary.documents + summary.rejected)
            }
        }
        return summary
    }

    /// Where documents go: an index, or an alias written with `require_alias` (a write racing the
    /// alias's removal fails instead of creating a stray index under its name).
    public struct Target: Sendable {
        public let index: String
        public let throughAlias: Bool
        public init(index: String, throughAlias: Bool) {
            self.index = index
            self.throughAlias = throughAlias
        }
    }

    /// One page as its bulk requests, with what a dead letter needs of each document besides its JSON.
    struct EncodedPage: Sendable {
        var requests: [BulkRequest] = []
        var stamps: [(orderVersion: Int, updatedAtMs: Int64)] = []
        var lastOrderID: String?
        /// Changes recorded for a reindex that this page's documents hold (`forgettingChangesRecordedFor`).
        var coveredChanges: [ReindexChanges.Change] = []

        /// Adds `document` to `builder` and keeps its stamp, so that stamps stay one per document,
        /// in the requests' order (`tally` finds a refused document's stamp by its position).
        mutating func append(_ document: OrderDocument, to builder: inout BulkRequestBuilder) {
            builder.add(document)
            stamps.append((document.version, document.updatedAt.millisecondsSinceEpoch))
        }
    }

    /// Counts one page's outcomes; returns the documents the target refused for good.
    func tally(_ outcomes: [[BulkItemOutcome]], of page: EncodedPage, into summary: inout Summary) throws -> [Refused] {
        var refusedHere: [Refused] = []
        var position = 0  // the document's place in the page: one item per document (one target)
        for (request, outcomes) in zip(page.requests, outcomes) {
            try outcomes.throwIfRefused()
            for (item, outcome) in outcomes.enumerated() {
                defer { position += 1 }
                switch outcome {
                case .applied: summary.documents += 1
                case .stale: summary.stale += 1; summary.documents += 1
                case .rejected(let status, let type):
                    let stamp = page.stamps[position]
                    refusedHere.append(Refused(orderID: request.ids[item], orderVersion: stamp.orderVersion, updatedAtMs: stamp.updatedAtMs,
                                               document: String(decoding: request.source(of: item), as: UTF8.self),
                                               status: status, errorType: type))
                case .indexMissing, .retry, .refused: throw LoadError.indexVanished
                }
            }
        }
        summary.rejected += refusedHere.count
        return refusedHere
    }

    /// One keyset page, in its own short read-only transaction, written into bulk requests of at
    /// most `BulkSizing.maxRequestBytes` as it is read, `BulkSizing.documentsPerRead` rows at a time.
    /// It ends at `batchSize` documents, or once a request is full (large orders): a page holds
    /// about one request's bytes at most, whatever its orders hold.
    private func page(after cursor: String?, into target: Target) async throws -> EncodedPage {
        let (batchSize, registration) = (self.batchSize, forgettingChangesRecordedFor)
        return try await pool.transaction(isolation: .repeatableReadReadOnly) { connection in
            var builder = BulkRequestBuilder(target: target.index, requireAlias: target.throughAlias, expectedDocuments: batchSize)
            var page = EncodedPage(lastOrderID: cursor)
            var ids: [String] = []
            while builder.documentCount < batchSize, !builder.hasFull {
                let limit = min(BulkSizing.documentsPerRead, batchSize - builder.documentCount)
                let part = try OrderDocumentSource.page(after: page.lastOrderID, limit: limit, on: connection)
                for document in part { page.append(document, to: &builder) }
                if registration != nil { ids += part.map(\.orderID) }
                guard let last = part.last else { break }
                page.lastOrderID = last.orderID
                if part.count < limit { break }
            }
            // In the same snapshot as the documents (repeatable read): what it sees, they hold.
            if let registration { page.coveredChanges = try ReindexChanges.covered(orders: ids, for: registration, on: connection) }
            page.requests = builder.takeAll()
            if page.requests.isEmpty { page.lastOrderID = nil }
            return page
        }
    }

    /// One page's requests, one after another; their outcomes in the same order.
    func write(_ page: EncodedPage) async throws -> [[BulkItemOutcome]] {
        var outcomes: [[BulkItemOutcome]] = []
        for request in page.requests { outcomes.append(try await writer.write(request)) }
        return outcomes
    }

    public enum LoadError: Error, CustomStringConvertible {
        case indexVanished
        public var description: String { "the target index disappeared during the load" }
    }
}
