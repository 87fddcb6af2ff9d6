import FaultProxy
import LibPQClient
import ReadModel
import Logging
import ServiceTesting

/// The raw `_bulk` baseline a soak's self-heal rebuild is compared with: every order's document,
/// built before the clock starts, posted `documentsPerRequest` to a request on one connection into
/// a fresh osmem-server, as the rebuild loads a fresh one.
///
/// The request size is the rebuild's own (`BulkSizing.documentsPerLoadRequest`): the fastest way
/// to load osmem-server that leaves an index fit for the updates that follow. Loading 1000 to a
/// request is as fast or a little faster (`fastestDocumentsPerRequest`), but `scripts/bench
/// rebuild` measured each later request of 100 updates at 65-67 s in an index loaded that way
/// (0.15-0.17 s after 2000 to a request): no loader of a live index can use it, so it is reported
/// beside the target rather than as it.
///
/// Two conditions, because the machine is shared: the rebuild runs beside the soak's command load
/// (the write API, PostgreSQL and the load generator take their share of both cores, which
/// osmem-server uses when it can), and its requests pass through the soak's fault proxy. A baseline
/// on an idle machine, straight to the server, mixes that difference into the ratio; one taken
/// while the soak's own server is down (`.underLoad`: the same load runs, the indexers wait, the
/// documents go through a quiet proxy of the same kind) leaves only what the rebuild itself does.
struct RawBulkBaseline {
    enum Condition {
        /// During the soak's outage, through a fault proxy: what the target compares with.
        case underLoad
        /// After the soak, nothing else running, straight to the server.
        case idle
    }

    static let documentsPerRequest = BulkSizing.documentsPerLoadRequest
    /// osmem-server's fastest shape on a fresh server, whatever the index is like afterwards.
    static let fastestDocumentsPerRequest = 1000

    let env: BenchEnvironment
    let pool: PostgresPool
    let logger: Logger

    /// Documents per second.
    func measure(_ condition: Condition, documentsPerRequest: Int = Self.documentsPerRequest) async throws -> Double {
        let bodies = try await RawBulkShapes.bodies(pool: pool, documentsPerRequest: documentsPerRequest)
        let documents = bodies.reduce(0) { sum, body in sum + body.reduce(0) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 } } / 2
        let benchmarks = IndexBenchmarks(env: env, orders: documents, logger: logger)
        let osmem = try await env.startOsmem()
        defer { osmem.stop() }
        try await benchmarks.createAlias(osmem.url)
        let seconds: Double
        switch condition {
        case .idle:
            seconds = try await benchmarks.postRaw(bodies, to: osmem.url, concurrency: 1)
        case .underLoad:
            let proxy = FaultProxy(upstream: osmem.url, logger: logger)
            seconds = try await withScoped({ try await proxy.start() }, stop: { _ in await proxy.stop() }) { port in
                try await benchmarks.postRaw(bodies, to: "http://127.0.0.1:\(port)", concurrency: 1)
            }
        }
        let perSecond = Double(documents) / max(seconds, 0.001)
        logger.info("raw _bulk baseline", metadata: ["soak.condition": "\(condition)", "soak.documents": "\(documents)", "soak.per_request": "\(documentsPerRequest)",
                                                     "soak.docs_per_s": "\(Int(perSecond))"])
        return perSecond
    }
}
