import ElasticsearchClient
import LibPQClient
import ReadModel

/// The raw `_bulk` baseline at the server's best: the same documents posted in several
/// request shapes, each into a fresh osmem-server, and the fastest one kept. Comparing the
/// indexer with its own request shape would only show that it is as good as itself.
struct RawBulkShapes {
    struct Shape: CustomStringConvertible {
        var documents: Int?
        var bytes: Int?
        var connections: Int

        var description: String {
            let size = documents.map { "\($0) docs" } ?? "\((bytes ?? 0) >> 20) MB"
            return "\(size) x \(connections) conn"
        }

        var key: String {
            let size = documents.map { "\($0)docs" } ?? "\((bytes ?? 0) >> 20)mb"
            return "raw_\(size)_\(connections)conn_docs_per_s"
        }
    }

    static let shapes: [Shape] = [500, 1000, 2000].flatMap { n in [1, 2].map { Shape(documents: n, connections: $0) } }
        + [1, 2].map { Shape(bytes: BulkSizing.maxRequestBytes, connections: $0) }

    let benchmarks: IndexBenchmarks

    /// Docs/s per shape, and the best.
    func measure(pool: PostgresPool, orders: Int) async throws -> (best: (Shape, Double), all: [(Shape, Double)]) {
        var results: [(Shape, Double)] = []
        for shape in Self.shapes {
            let osmem = try await benchmarks.env.startOsmem()
            defer { osmem.stop() }
            try await benchmarks.createAlias(osmem.url)
            let bodies = try await Self.bodies(pool: pool, documentsPerRequest: shape.documents, bytesPerRequest: shape.bytes)
            let seconds = try await benchmarks.postRaw(bodies, to: osmem.url, concurrency: shape.connections)
            results.append((shape, Double(orders) / seconds))
            benchmarks.logger.info("raw _bulk", metadata: ["bench.shape": "\(shape)", "bench.docs_per_s": "\(Int(Double(orders) / seconds))"])
        }
        return (results.max { $0.1 < $1.1 }!, results)
    }

    /// The indexer's NDJSON for every order, cut by document count or by body size; `versionBump`
    /// is added to every external version (a newer version of the same documents).
    static func bodies(pool: PostgresPool, documentsPerRequest: Int?, bytesPerRequest: Int? = nil,
                       versionBump: Int = 0) async throws -> [[UInt8]] {
        var bodies: [[UInt8]] = []
        var request = BulkRequest()
        var inRequest = 0
        var after: String?
        while true {
            let cursor = after
            let documents = try await pool.withConnection { try OrderDocumentSource.page(after: cursor, limit: 2000, on: $0) }
            guard let last = documents.last else { break }
            for d in documents {
                request.index(IndexBenchmarks.alias, id: d.orderID, version: d.externalVersion + Int64(versionBump), requireAlias: true) {
                    d.writeJSON(into: &$0)
                }
                inRequest += 1
                let full = documentsPerRequest.map { inRequest >= $0 } ?? (request.body.bytes.count >= bytesPerRequest ?? .max)
                if full {
                    bodies.append(request.body.bytes)
                    (request, inRequest) = (BulkRequest(), 0)
                }
            }
            after = last.orderID
        }
        if inRequest > 0 { bodies.append(request.body.bytes) }
        return bodies
    }
}
