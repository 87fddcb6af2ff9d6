import ElasticsearchClient
import JSONSupport
import Logging
import LibPQClient
import ReadModel
import IndexSchema

/// Compares PostgreSQL (id, version) with the index (id, version) by walking
/// both in id order, a page at a time (flat memory), and optionally repairs
/// what drifted with the indexer's own document builder and versions.
public struct DriftVerifier: Sendable {
    public enum Drift: Sendable, Equatable {
        /// In PostgreSQL, not in the index.
        case missing(String)
        /// In both; the index holds an older version.
        case stale(String, indexed: Int64, current: Int64)
        /// In the index, not in PostgreSQL.
        case extra(String)

        public var id: String {
            switch self {
            case .missing(let id), .stale(let id, _, _), .extra(let id): id
            }
        }
    }

    /// Counts only: drifted ids go to `onDrift` as they are found, so memory
    /// stays flat however much drifted.
    public struct Report: Sendable {
        public var checked = 0
        public var missing = 0
        public var stale = 0
        public var extra = 0
        public var repaired = 0
        public var drifted: Int { missing + stale + extra }
    }

    let pool: PostgresPool
    let client: ElasticsearchClient
    let layout: IndexLayout
    let pageSize: Int
    let logger: Logger

    public init(pool: PostgresPool, client: ElasticsearchClient, layout: IndexLayout, pageSize: Int = 1000, logger: Logger) {
        self.pool = pool
        self.client = client
        self.layout = layout
        self.pageSize = pageSize
        self.logger = logger
    }

    /// Walks everything; `onDrift` sees each drifted id as it is found. With
    /// `repair`, each page's drift is fixed before moving on.
    public func run(repair: Bool, onDrift: @Sendable (Drift) -> Void = { _ in }) async throws -> Report {
        var report = Report()
        var database = PageReader<(String, Int64)> { after in
            try await pool.query(
                """
                SELECT o.id, \(DocumentVersion.sqlExpression) FROM orders o JOIN customers c ON c.id = o.customer_id
                WHERE o.id > $1 ORDER BY o.id LIMIT $2
                """, [after ?? "", pageSize]
            ).map { ($0.string(0)!, $0.int64(1)!) }
        } key: { $0.0 }
        var index = PageReader<(String, Int64)> { after in try await indexPage(after: after) } key: { $0.0 }

        var pending: [Drift] = []
        while true {
            let a = try await database.peek()
            let b = try await index.peek()
            if a == nil && b == nil { break }
            let drift: Drift?
            if let a, b == nil || a.0 < b!.0 {
                drift = .missing(a.0)
                report.checked += 1
                _ = try await database.next()
            } else if let b, a == nil || b.0 < a!.0 {
                drift = .extra(b.0)
                _ = try await index.next()
            } else {
                let (a, b) = (a!, b!)
                report.checked += 1
                drift = b.1 < a.1 ? .stale(a.0, indexed: b.1, current: a.1) : nil
                _ = try await database.next()
                _ = try await index.next()
            }
            if let drift {
                switch drift {
                case .missing: report.missing += 1
                case .stale: report.stale += 1
                case .extra: report.extra += 1
                }
                onDrift(drift)
                if repair { pending.append(drift) }
                if pending.count >= pageSize {
                    report.repaired += try await fix(pending)
                    pending.removeAll()
                }
            }
        }
        if repair, !pending.isEmpty { report.repaired += try await fix(pending) }
        return report
    }

    /// The index's (id, composite version) after `after`, in id order.
    private func indexPage(after: String?) async throws -> [(String, Int64)] {
        var body = JSONObject([
            ("size", .int(pageSize)), ("sort", [.object(JSONObject([(IndexField.orderID.path, "asc")]))]),
            ("_source", .array([IndexField.orderID, .version, .customerVersion].map { .string($0.path) })),
            ("query", ["match_all": [:]]),
        ])
        if let after { body["search_after"] = [.string(after)] }
        let result = try await client.search(layout.alias, body: JSONValue.object(body).serializedBytes)
        return (result["hits"]?["hits"]?.arrayValue ?? []).compactMap { hit in
            guard let source = hit["_source"], let id = source[.orderID]?.stringValue else { return nil }
            let order = source[.version]?.intValue ?? 0, customer = source[.customerVersion]?.intValue ?? 0
            return (id, DocumentVersion(order: order, customer: customer).packed)
        }
    }

    private func fix(_ drift: [Drift]) async throws -> Int {
        let writer = BulkWriter(client: client, logger: logger)
        let reindex = drift.filter { if case .extra = $0 { false } else { true } }.map(\.id)
        let extras = drift.filter { if case .extra = $0 { true } else { false } }.map(\.id)
        var fixed = 0
        if !reindex.isEmpty {
            let missing = Set(drift.compactMap { if case .missing(let id) = $0 { id } else { nil } })
            let documents = try await pool.withConnection { try OrderDocumentSource.documents(ids: reindex, on: $0) }
            let outcomes = try await writer.write({ include in
                var request = BulkRequest()
                for (i, d) in documents.enumerated() where include(i) {
                    request.index(layout.alias, id: d.orderID, version: d.externalVersion, requireAlias: true) { d.writeJSON(into: &$0) }
                }
                return request
            }, count: documents.count)
            for (document, outcome) in zip(documents, outcomes) {
                switch outcome {
                case .applied: fixed += 1
                // A newer version got there meanwhile: fine for a stale document; for a
                // missing one it is a delete tombstone (kept for index.gc_deletes, 60 s by
                // default) and the document is still missing.
                case .stale where !missing.contains(document.orderID): fixed += 1
                case .stale:
                    logger.warning("a delete tombstone blocks re-adding the document; run verify --repair again after index.gc_deletes",
                                   metadata: ["order.id": "\(document.orderID)"])
                default: continue
                }
            }
        }
        if !extras.isEmpty {
            // Deleted with a version above anything stored, so the removal wins.
            let target = try await client.aliasTargets(layout.alias).first ?? layout.alias
            let outcomes = try await writer.write({ include in
                var request = BulkRequest()
                for (i, id) in extras.enumerated() where include(i) { request.delete(target, id: id, version: Int64.max / 2) }
                return request
            }, count: extras.count)
            fixed += outcomes.filter { $0 == .applied }.count
        }
        return fixed
    }
}

/// Reads a keyset-paginated source one element at a time.
struct PageReader<Element> {
    private var buffer: [Element] = []
    private var position = 0
    private var exhausted = false
    private var last: String?
    private let fetch: (String?) async throws -> [Element]
    private let key: (Element) -> String

    init(fetch: @escaping (String?) async throws -> [Element], key: @escaping (Element) -> String) {
        self.fetch = fetch
        self.key = key
    }

    mutating func peek() async throws -> Element? {
        if position < buffer.count { return buffer[position] }
        guard !exhausted else { return nil }
        buffer = try await fetch(last)
        position = 0
        if buffer.isEmpty { exhausted = true; return nil }
        last = key(buffer[buffer.count - 1])
        return buffer[0]
    }

    mutating func next() async throws -> Element? {
        let element = try await peek()
        if element != nil { position += 1 }
        return element
    }
}
