import ElasticsearchClient
import JSONSupport
import Logging
import LibPQClient

/// Streams every order from one consistent PostgreSQL snapshot into an index,
/// in keyset-paginated batches (memory does not grow with the table), with
/// external versions so that it can overlap with live indexing safely.
public struct FullLoader: Sendable {
    public let pool: PostgresPool
    public let writer: BulkWriter
    public var batchSize: Int
    let logger: Logger

    public init(pool: PostgresPool, writer: BulkWriter, batchSize: Int = 1000, logger: Logger) {
        self.pool = pool
        self.writer = writer
        self.batchSize = batchSize
        self.logger = logger
    }

    public struct Summary: Sendable {
        public var documents = 0
        public var stale = 0
        public var rejected: [String] = []
    }

    /// Number of orders the snapshot will hold (for progress and ETA).
    public func countOrders() async throws -> Int {
        try await pool.query("SELECT count(*) FROM orders").first?.int(0) ?? 0
    }

    /// Loads into `index` (an alias when `throughAlias`); calls `progress` after each batch.
    public func load(into index: String, throughAlias: Bool, progress: @Sendable (Int) -> Void = { _ in }) async throws -> Summary {
        let batchSize = self.batchSize
        return try await pool.withReservedConnection { connection in
            try await connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            do {
                var summary = Summary()
                var after: String?
                while true {
                    let cursor = after
                    let documents = try await connection.run { try OrderDocumentSource.page(after: cursor, limit: batchSize, on: $0) }
                    guard let last = documents.last else { break }
                    let outcomes = try await writer.write({ include in
                        var request = BulkRequest()
                        for (i, document) in documents.enumerated() where include(i) {
                            request.index(index, id: document.orderID, version: document.externalVersion, requireAlias: throughAlias) {
                                document.writeJSON(into: &$0)
                            }
                        }
                        return request
                    }, count: documents.count)
                    for (i, outcome) in outcomes.enumerated() {
                        switch outcome {
                        case .applied: summary.documents += 1
                        case .stale: summary.stale += 1; summary.documents += 1
                        case .rejected: summary.rejected.append(documents[i].orderID)
                        case .indexMissing, .retry: throw LoadError.indexVanished
                        }
                    }
                    progress(summary.documents + summary.rejected.count)
                    after = last.orderID
                }
                try await connection.execute("COMMIT")
                return summary
            } catch {
                try? await connection.execute("ROLLBACK")
                throw error
            }
        }
    }

    public enum LoadError: Error, CustomStringConvertible {
        case indexVanished
        public var description: String { "the target index disappeared during the load" }
    }
}
