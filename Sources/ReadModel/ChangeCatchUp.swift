import LibPQClient
import OrderDomain
import OrderStore

extension FullLoader {
    /// When a catch-up stops.
    public enum CatchUpEnd: Sendable {
        /// Once a read of recorded changes finds fewer than this many (at most the loader's
        /// `batchSize`, the read's size): what is left is small enough to follow the alias swap
        /// (changes keep coming while the live indexers run).
        case fewerThan(Int)
        /// Once nothing is recorded: after the swap, when nothing records new changes any more.
        case empty
    }

    /// Copies into `target` the current documents of what live indexers recorded for a reindex
    /// registered as `registration` (`ReindexChanges`): the orders, and every order of the
    /// customers, whose events they claimed. `batchSize` changes at a time, oldest first, each
    /// forgotten once its documents were acknowledged; each read of PostgreSQL is a short
    /// transaction of its own. Refused documents go to `refused` like the load's. After each read's
    /// documents, `progress` (when given: it costs a count) gets the documents copied so far and
    /// the changes still recorded: a catch-up beside a heavy live load can take minutes, and
    /// whether it converges is the question.
    public func catchUp(recordedFor registration: String, into target: Target, until end: CatchUpEnd,
                        progress: ((_ copied: Int, _ changesLeft: Int) -> Void)? = nil,
                        refused: ([Refused]) async throws -> Void = { _ in }) async throws -> Summary {
        var summary = Summary()
        while true {
            let changes = try await pool.withConnection { [batchSize] in
                try ReindexChanges.oldest(for: registration, limit: batchSize, on: $0)
            }
            guard !changes.isEmpty else { return summary }
            let (orders, customers) = Self.distinctAggregates(changes)
            try await copy(orders, into: target, summary: &summary, refused: refused)
            for customer in customers { try await copyOrders(ofCustomer: customer, into: target, summary: &summary, refused: refused) }
            try await ReindexChanges.remove(changes, of: registration, from: pool)
            if let progress { progress(summary.documents + summary.rejected, try await ReindexChanges.count(for: registration, on: pool)) }
            if case .fewerThan(let few) = end, changes.count < few { return summary }
        }
    }

    /// The changed orders and customers, each once, in the order first recorded.
    static func distinctAggregates(_ changes: [ReindexChanges.Change]) -> (orders: [String], customers: [String]) {
        var orders: [String] = [], customers: [String] = [], seen = Set<String>()
        for change in changes where seen.insert(change.aggregateType + "/" + change.aggregateID).inserted {
            if change.aggregateType == DomainEvent.AggregateType.customer.rawValue {
                customers.append(change.aggregateID)
            } else {
                orders.append(change.aggregateID)
            }
        }
        return (orders, customers)
    }

    /// Every order of `customer`, a page of ids at a time.
    private func copyOrders(ofCustomer customer: String, into target: Target, summary: inout Summary,
                            refused: ([Refused]) async throws -> Void) async throws {
        var after: String?
        while true {
            let cursor = after
            let ids = try await pool.withConnection { [batchSize] in
                try OrderDocumentSource.orderIDs(ofCustomer: customer, after: cursor, limit: batchSize, on: $0)
            }
            guard let last = ids.last else { return }
            try await copy(ids, into: target, summary: &summary, refused: refused)
            after = last
        }
    }

    /// The current documents of `ids`, `BulkSizing.documentsPerRead` at a time (ids of orders
    /// that do not exist are left out).
    private func copy(_ ids: [String], into target: Target, summary: inout Summary,
                      refused: ([Refused]) async throws -> Void) async throws {
        for chunk in ids.chunked(BulkSizing.documentsPerRead) {
            let page = try await pool.withConnection { connection in
                var builder = BulkRequestBuilder(target: target.index, requireAlias: target.throughAlias, expectedDocuments: chunk.count)
                var page = EncodedPage()
                for document in try OrderDocumentSource.documents(ids: Array(chunk), on: connection) { page.append(document, to: &builder) }
                page.requests = builder.takeAll()
                return page
            }
            let refusedHere = try tally(try await write(page), of: page, into: &summary)
            if !refusedHere.isEmpty { try await refused(refusedHere) }
        }
    }
}
