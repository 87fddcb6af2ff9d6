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

    /// The largest body of one bulk request by default: within Elasticsearch's "a few MB", and
    /// far below its `http.max_content_length` (100 MiB), whose 413 no retry would cure.
    public static let maxRequestBytes = 5 << 20

    /// Consecutive runs of `documents` whose estimated JSON stays within `maxBytes` (at least one
    /// each): a page or claim is counted in documents, but an order may hold 100 items, so its
    /// requests are cut by bytes, or a page of large orders would be a 413 no retry cures.
    public static func groups(_ documents: [OrderDocument], maxBytes: Int) -> [ArraySlice<OrderDocument>] {
        var groups: [ArraySlice<OrderDocument>] = []
        var start = 0, bytes = 0
        for (i, document) in documents.enumerated() {
            let size = document.estimatedJSONBytes + 100  // plus the action line
            if i > start, bytes + size > maxBytes {
                groups.append(documents[start..<i])
                (start, bytes) = (i, 0)
            }
            bytes += size
        }
        if start < documents.count { groups.append(documents[start...]) }
        return groups
    }
}
