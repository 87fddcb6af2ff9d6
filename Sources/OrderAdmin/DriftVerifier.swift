import ElasticsearchClient
import JSONSupport
import Logging
import LibPQClient
import ReadModel
import IndexSchema

/// Compares PostgreSQL (id, version) with the index (id, version) by walking
/// both in id order, a page at a time (flat memory), and optionally repairs
/// what drifted with the indexer's own document builder and versions.
///
/// Safe on a live system (guarantee 8): the walk only finds *candidates*; each
/// is settled (`settle`) against PostgreSQL, the outbox and a realtime read of
/// the index before it counts. An order with an event still in the outbox is
/// lag, not drift. Every read is a statement of its own: nothing stays open.
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
        /// Candidates whose events were still in the outbox: the indexers will apply them.
        public var lagging = 0
        public var repaired = 0
        public var drifted: Int { missing + stale + extra }

        mutating func count(_ drift: Drift) {
            switch drift {
            case .missing: missing += 1
            case .stale: stale += 1
            case .extra: extra += 1
            }
        }
    }

    let pool: PostgresPool
    let client: ElasticsearchClient
    let layout: IndexLayout
    let pageSize: Int
    let logger: Logger
    /// How long `--repair` waits for delete tombstones (`index.gc_deletes`, 60 s by default) to expire.
    public var tombstoneWait: Duration = .seconds(180)
    /// How long one read of the index is retried while the cluster is overloaded or away (429, 5xx,
    /// timeouts): verify runs beside live indexers, and a busy moment is not a reason to fail.
    public var readPatience: Duration = .seconds(120)
    /// Ids per realtime `_mget` while settling candidates.
    static let versionReadBatch = 1000

    /// `pageSize` is both the walk's page and the candidate group. A sorted page costs the server
    /// about the same at 1000 hits as at 5000 (osmem sorts every document per page: 0.16 s either
    /// way at 80k documents), so big pages make the walk several times faster; 10000 is
    /// Elasticsearch's `index.max_result_window`.
    public init(pool: PostgresPool, client: ElasticsearchClient, layout: IndexLayout, pageSize: Int = 5000, logger: Logger) {
        precondition((1...10_000).contains(pageSize), "pageSize must be 1...10000 (index.max_result_window)")
        self.pool = pool
        self.client = client
        self.layout = layout
        self.pageSize = pageSize
        self.logger = logger
    }

    /// Walks everything; `onDrift` sees each settled drift as it is found. With `repair`, each
    /// page's drift is fixed before moving on, and documents a delete tombstone refuses are
    /// retried until the tombstone expires (`onProgress` says so).
    public func run(repair: Bool, onDrift: @Sendable (Drift) -> Void = { _ in },
                    onProgress: @Sendable (String) -> Void = { _ in }) async throws -> Report {
        var report = Report()
        var blocked: [String] = []
        try await walk(report: &report) { candidates, report in
            let drift = try await settle(candidates, report: &report)
            drift.forEach { report.count($0); onDrift($0) }
            if repair {
                let outcome = try await fix(drift)
                report.repaired += outcome.fixed
                blocked += outcome.blocked
            }
        }
        if repair, !blocked.isEmpty {
            report.repaired += try await waitOutTombstones(blocked, onProgress: onProgress)
        }
        return report
    }

    /// Merges the two id-ordered streams; hands candidates on in groups of at most `pageSize`.
    private func walk(report: inout Report, _ handle: ([Drift], inout Report) async throws -> Void) async throws {
        var database = PageReader<(String, Int64)> { after in try await databasePage(after: after) } key: { $0.0 }
        var index = PageReader<(String, Int64)> { after in try await indexPage(after: after) } key: { $0.0 }
        var candidates: [Drift] = []
        while true {
            let a = try await database.peek()
            let b = try await index.peek()
            if a == nil && b == nil { break }
            if let a, b == nil || a.0 < b!.0 {
                candidates.append(.missing(a.0))
                report.checked += 1
                _ = try await database.next()
            } else if let b, a == nil || b.0 < a!.0 {
                candidates.append(.extra(b.0))
                _ = try await index.next()
            } else {
                let (a, b) = (a!, b!)
                report.checked += 1
                if b.1 < a.1 { candidates.append(.stale(a.0, indexed: b.1, current: a.1)) }
                _ = try await database.next()
                _ = try await index.next()
            }
            if candidates.count >= pageSize {
                try await handle(candidates, &report)
                candidates.removeAll()
            }
        }
        if !candidates.isEmpty { try await handle(candidates, &report) }
    }

    private func databasePage(after: String?) async throws -> [(String, Int64)] {
        try await pool.query(
            """
            SELECT o.id, \(DocumentVersion.sqlExpression) FROM orders o JOIN customers c ON c.id = o.customer_id
            WHERE o.id > $1 ORDER BY o.id LIMIT $2
            """, [after ?? "", pageSize]
        ).map { ($0.string(0)!, $0.int64(1)!) }
    }

    /// The index's (id, stored `_version`) after `after`, in id order. `_version` is the external
    /// version the writer sent (`DocumentVersion.packed`), the number the index itself compares.
    private func indexPage(after: String?) async throws -> [(String, Int64)] {
        var body = JSONObject([
            ("size", .int(pageSize)), ("sort", [.object(JSONObject([(IndexField.orderID.path, "asc")]))]),
            ("_source", false), ("version", true), ("track_total_hits", false),
            ("query", ["match_all": [:]]),
        ])
        if let after { body["search_after"] = [.string(after)] }
        let request = JSONValue.object(body).serializedBytes
        let result = try await retryingWhileBusy(client, for: readPatience) { try await client.search(layout.alias, body: request, timeout: $0) }
        return (result["hits"]?["hits"]?.arrayValue ?? []).compactMap { hit in
            guard let id = hit["_id"]?.stringValue else { return nil }
            return (id, hit["_version"]?.int64Value ?? 0)
        }
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
