import ElasticsearchClient

/// How large the bulk requests are when there is much to send: an indexer's backlog, a
/// customer's fan-out, `order-admin reindex` and the indexer's rebuild of a missing index.
/// One place for the figures and the reasons.
public enum BulkSizing {
    /// Documents per request when there is much to send. A few MB of our documents (roughly 1 KB
    /// each with its action line), Elasticsearch's guidance for a bulk request.
    ///
    /// Measured on osmem-server, the development and CI server: a request of inserts costs
    /// about the same per document from 1000 to 2000 documents (20k: 1382 and 1370 docs/s),
    /// but a request that updates orders spread over the index costs about the same whatever
    /// its size: at 30,000 orders 30 such updates took 19.5 s, 1000 took 21 s, 3000 took 21 s
    /// and 10,000 took 23 s; at 100,000 orders, 1000 took 75 s and 5000 took 71 s. Under a live
    /// load nearly every event updates an older order, and a customer's orders are spread over
    /// the whole index, so on that server only large requests keep up (1000 fell behind a
    /// 100-commands/s soak once the index passed about 80,000 orders).
    public static let documentsPerLargeRequest = 5000

    /// Documents per request when a whole index is loaded into a new, empty one: `order-admin reindex`
    /// and the indexer's rebuild of a missing index, mostly inserts.
    ///
    /// Measured on osmem-server with 60,000 orders loaded into a fresh index per size: 1000 a request
    /// went at 2361 docs/s, 2000 at 2275, 5000 at 1899 and one request at 1608; but 100 updates
    /// spread over the index loaded 1000 at a time then took 20 s (every time), and 0.03-0.07 s in
    /// the others. So the smallest size whose index stays cheap to update: the live changes that
    /// follow the load (and, during a reindex, come with it) are exactly such updates.
    public static let documentsPerLoadRequest = 2000

    /// The body of one large bulk request: within Elasticsearch's "a few MB", and far below its
    /// `http.max_content_length` (100 MiB), whose 413 no retry would cure. The cap of reindex and
    /// rebuild requests, and where the live indexer's requests start under a backlog (they are
    /// resized from there, up to `largestRequestBytes`).
    public static let maxRequestBytes = 5 << 20

    /// How large the live indexer's requests may grow under a backlog while the cluster indexes
    /// faster for it (`INDEXER_MAX_BULK_BYTES`): Elasticsearch advises against going "beyond a
    /// couple tens of megabytes per request even if larger requests seem to perform better", as
    /// many at once put a cluster under memory pressure.
    public static let largestRequestBytes = 20 << 20

    /// The most events a worker claims at once, however its batches grow: a claim's rows are held
    /// while its documents are read and sent.
    public static let largestBatch = 20_000

    /// Documents read from PostgreSQL at a time when a claim or page is large: how much of a batch
    /// is held as rows and structs before it becomes request bytes (`BulkRequestBuilder`).
    public static let documentsPerRead = 1000
}

/// Bulk requests of documents, written as the documents are read and cut before one would pass
/// `maxBytes` (at least one document each). A claim or page is counted in documents, but an order
/// may hold 100 items: requests are cut by bytes, or a page of large orders would be a 413 no retry
/// cures. The documents need not be kept: the request bytes are all a sender holds (`BulkRequest`).
/// Item `i` of a request is its `i`-th document.
public struct BulkRequestBuilder: Sendable {
    public let target: String
    public let requireAlias: Bool
    public let maxBytes: Int
    private var current: BulkRequest
    private var full: [BulkRequest] = []

    /// `expectedDocuments` sizes the first request's buffer (about 1 KB per document, at most `maxBytes`).
    public init(target: String, requireAlias: Bool, maxBytes: Int = BulkSizing.maxRequestBytes, expectedDocuments: Int) {
        self.target = target
        self.requireAlias = requireAlias
        self.maxBytes = maxBytes
        current = BulkRequest(capacity: Self.capacity(documents: expectedDocuments, maxBytes: maxBytes))
    }

    /// Room for `documents` documents of about 1 KB, at most `maxBytes` and an eighth (the cut uses
    /// estimates), so a request of typical orders never grows its buffer by doubling.
    static func capacity(documents: Int, maxBytes: Int) -> Int {
        min(max(1, documents) * 1024, maxBytes) * 9 / 8
    }

    /// Documents written so far, in every request.
    public private(set) var documentCount = 0

    public mutating func add(_ document: OrderDocument) {
        let size = document.estimatedJSONBytes + 100  // plus the action line
        if current.count > 0, current.byteCount + size > maxBytes {
            full.append(current)
            current = BulkRequest(capacity: maxBytes * 9 / 8)
        }
        current.index(target, id: document.orderID, version: document.externalVersion, requireAlias: requireAlias) {
            document.writeJSON(into: &$0)
        }
        documentCount += 1
    }

    /// Whether a request is full and waits to be taken.
    public var hasFull: Bool { !full.isEmpty }

    /// The requests that are full, to send now; the one being filled stays.
    public mutating func takeFull() -> [BulkRequest] {
        defer { full = [] }
        return full
    }

    /// Every request not taken yet, the last one too; the builder starts empty again.
    public mutating func takeAll() -> [BulkRequest] {
        var all = takeFull()
        if current.count > 0 { all.append(current) }
        current = BulkRequest(capacity: 0)
        return all
    }
}

extension Array {
    /// Consecutive slices of at most `size` elements (reads and requests of bounded size).
    public func chunked(_ size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}
