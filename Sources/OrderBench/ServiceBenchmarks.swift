import ElasticsearchClient
import Foundation
import Hummingbird
import JSONSupport
import Logging
import OrderDomain
import OrderSearchAPI
import OrderStore
import LibPQClient
import ReadModel
import Security
import ServiceTesting
import TokenSigning

/// `write`, `lag`, `search`: the HTTP services against baselines that skip them.
public struct ServiceBenchmarks: Sendable {
    let env: BenchEnvironment
    let orders: Int
    let logger: Logger

    public init(env: BenchEnvironment, orders: Int, logger: Logger) {
        self.env = env
        self.orders = orders
        self.logger = logger
    }

    static func orderBody(customer: Int, _ i: Int) -> String {
        let product = DataSet.products[i % DataSet.products.count]
        return #"{"customer_id":"cus_b\#(customer)","currency":"EUR","items":[{"sku":"SKU-\#(i % 20)","name":"\#(product)","quantity":\#(1 + i % 3),"unit_price":"\#(5 + i % 50).99"}],"shipping_address":{"line1":"Main Street 1","city":"Berlin","postal_code":"10115","country":"DE"}}"#
    }

    /// Runs `total` calls of `call` at `concurrency`; returns (seconds, latencies).
    static func load(total: Int, concurrency: Int, _ call: @escaping @Sendable (Int) async throws -> Void) async throws -> (Double, Latencies) {
        let next = Tally()
        let start = ContinuousClock.now
        let latencies = try await withThrowingTaskGroup(of: Latencies.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var local = Latencies()
                    while let i = next.take(below: total) {
                        let t = ContinuousClock.now
                        try await call(i)
                        local.add((ContinuousClock.now - t).seconds)
                    }
                    return local
                }
            }
            return try await group.reduce(into: Latencies()) { $0.add($1) }
        }
        return ((ContinuousClock.now - start).seconds, latencies)
    }

    /// Issues `write` at a steady rate; for every 10th write polls `visible`
    /// and returns the write-to-visible latencies.
    func steady(rate: Int, seconds: Int, write: @escaping @Sendable (Int) async throws -> String,
                visible: @escaping @Sendable (String) async throws -> Bool) async throws -> Latencies {
        let total = rate * seconds
        let interval = Duration.seconds(1) / rate
        let start = ContinuousClock.now
        return try await withThrowingTaskGroup(of: Double?.self) { group in
            for i in 0..<total {
                try await Task.sleep(until: start + interval * i, clock: .continuous)
                group.addTask {
                    let id = try await write(i)
                    guard Self.isProbed(i) else { return nil }
                    return try await Self.secondsUntilVisible(since: .now) { try await visible(id) }
                }
            }
            var latencies = Latencies()
            for try await sample in group { if let sample { latencies.add(sample) } }
            return latencies
        }
    }

    /// Every 10th write is polled until searchable.
    static func isProbed(_ i: Int) -> Bool { i % 10 == 0 }

    /// Polls `visible` every 20 ms until it holds (at most 30 s); seconds since `since`. The polls
    /// are searches, i.e. load on the search server: a baseline that is compared with a polled
    /// phase polls the same way.
    static func secondsUntilVisible(since: ContinuousClock.Instant, _ visible: () async throws -> Bool) async throws -> Double {
        while try await !visible() {
            if ContinuousClock.now - since > .seconds(30) { return 30 }
            try await Task.sleep(for: .milliseconds(20))
        }
        return (ContinuousClock.now - since).seconds
    }

    /// One document by `_id`, as a search sees it (refreshed writes only).
    static func isSearchable(_ id: String, in index: String, client: ElasticsearchClient) async throws -> Bool {
        try await client.count(index, query: ["ids": ["values": [.string(id)]]]) > 0
    }

    static let queryMix = [
        "q=mug", "q=runing%20shoes", "q=ali&sort=-total", "status=paid&country=DE", "currency=EUR&total_min=50&total_max=250",
        "sort=created_at&size=50", "created_from=2025-06-01&created_to=2025-09-01&status=shipped,delivered", "q=berlin&facet_size=20",
        "country=FR,IT&currency=EUR&sort=total", "q=SKU-3-0",
    ]

    public func search(requests: Int, concurrency: Int = 8, memoryRequests: Int = 10_000) async throws -> BenchReport {
        try await env.withFreshDatabase("bench_search") { _, pool in
            try await DataSet(orders: orders).load(into: pool, outbox: false)
            let osmem = try await env.startOsmem()
            defer { osmem.stop() }
            let configuration = { var c = CurlHTTPClient.Configuration(); c.threads = concurrency; c.requestTimeout = .seconds(120); return c }()
            return try await env.withElasticsearch(osmem.url) { client in
                try await withScoped({ CurlHTTPClient(configuration: configuration) }, stop: { await $0.shutdown() }) { http in
                    try await search(requests: requests, concurrency: concurrency, memoryRequests: memoryRequests, pool: pool,
                                     osmemURL: osmem.url, client: client, http: http)
                }
            }
        }
    }

    private func search(requests: Int, concurrency: Int, memoryRequests: Int, pool: PostgresPool, osmemURL: String,
                        client: ElasticsearchClient, http: CurlHTTPClient) async throws -> BenchReport {
        var report = BenchReport("search")
        _ = try await IndexLayout(alias: "orders").ensureAlias(client)
        _ = try await FullLoader(pool: pool, writer: BulkWriter(client: client, logger: logger), logger: logger).load(into: "orders", throughAlias: true)

        let port = freePort()
        let api = try env.launch("order-search-api", environment: ["ELASTICSEARCH_URL": osmemURL, "SEARCH_API_ADDR": "127.0.0.1:\(port)", "LOG_LEVEL": "error"])
        defer { api.stop() }
        try await waitForHTTP("http://127.0.0.1:\(port)/health")
        let authorization = try await env.staffAuthorization()
        let queries = try await Self.queryMixWithDeepPages(http: http, base: "http://127.0.0.1:\(port)", authorization: authorization)
        let bodies = try queries.map { try elasticsearchSearchBody(forQueryString: $0.removingPercentEncoding ?? $0, signer: env.signer) }
        let (directSeconds, directLatency, apiSeconds, apiLatency) = try await Self.alternate(requests: requests, concurrency: concurrency) { i in
            _ = try await client.search("orders", body: bodies[i % bodies.count])
        } api: { i in
            let response = try await http.execute(method: "GET", url: "http://127.0.0.1:\(port)/search/orders?\(queries[i % queries.count])",
                                                  headers: [authorization])
            guard response.status == 200 else { throw BenchError("search answered \(response.status)") }
        }
        api.stop()

        // Memory over many requests: the API against a stub cluster that answers
        // a canned result at once (osmem would need hours for 10k faceted queries).
        let canned = try await client.search("orders", body: bodies[0]).serializedBytes
        let stub = try await CannedSearch.start(body: canned, logger: logger)
        defer { stub.task.cancel() }
        let stubAPI = try env.launch("order-search-api", environment: [
            "ELASTICSEARCH_URL": "http://127.0.0.1:\(stub.port)", "SEARCH_API_ADDR": "127.0.0.1:\(port)", "LOG_LEVEL": "error",
        ])
        defer { stubAPI.stop() }
        try await waitForHTTP("http://127.0.0.1:\(port)/health")
        _ = try await Self.load(total: memoryRequests / 10, concurrency: concurrency) { i in
            _ = try await http.execute(method: "GET", url: "http://127.0.0.1:\(port)/search/orders?\(queries[i % queries.count])",
                                           headers: [authorization])
        }
        let rssEarly = stubAPI.rssMegabytes
        let (stubSeconds, stubLatency) = try await Self.load(total: memoryRequests, concurrency: concurrency) { i in
            _ = try await http.execute(method: "GET", url: "http://127.0.0.1:\(port)/search/orders?\(queries[i % queries.count])",
                                           headers: [authorization])
        }
        let rssLate = stubAPI.rssMegabytes

        let ratio = directSeconds / apiSeconds
        let requests = requests / 4 * 4
        report.add("auth_us_per_request", try await Self.verificationMicroseconds(secret: env.authSecret, token: authorization.1))
        report.add("orders", orders)
        report.add("requests", requests)
        report.add("concurrency", concurrency)
        report.add("queries_per_s", Double(requests) / apiSeconds)
        report.add("direct_queries_per_s", Double(requests) / directSeconds)
        report.add("ratio_vs_direct", ratio)
        report.add("p50_ms", apiLatency.percentile(50) * 1000)
        report.add("p99_ms", apiLatency.percentile(99) * 1000)
        report.add("direct_p50_ms", directLatency.percentile(50) * 1000)
        report.add("direct_p99_ms", directLatency.percentile(99) * 1000)
        // The API's own latency is measured against a backend that answers at once: beside osmem-server,
        // which runs one query at a time, both sides' latencies are its queue at concurrency 8, and their
        // difference moved by hundreds of milliseconds either way between runs.
        report.add("instant_backend_queries_per_s", Double(memoryRequests) / stubSeconds, digits: 0)
        report.add("instant_backend_p50_ms", stubLatency.percentile(50) * 1000)
        report.add("instant_backend_p99_ms", stubLatency.percentile(99) * 1000)
        report.add("rss_mb_after_1k", rssEarly, digits: 1)
        report.add("rss_mb_after_11k", rssLate, digits: 1)
        report.add("rss_growth", rssLate / max(rssEarly, 0.001))
        report.target("API ≥ 0.9× direct throughput", ratio >= 0.9)
        report.target("memory flat over \(memoryRequests) requests (growth ≤ 1.2×)", rssLate / max(rssEarly, 0.001) <= 1.2)
        return report
    }

    /// The search mix plus three cursors 10, 20 and 30 pages down one query (deep pages).
    static func queryMixWithDeepPages(http: CurlHTTPClient, base: String, authorization: (String, String)) async throws -> [String] {
        var queries = queryMix
        var cursor: String?
        for page in 0..<30 {
            let q = "sort=-created_at&size=100" + (cursor.map { "&cursor=\($0)" } ?? "")
            let body = try await http.execute(method: "GET", url: "\(base)/search/orders?\(q)", headers: [authorization]).body
            cursor = (try? JSONParser.parse(body))?["next_cursor"]?.stringValue
            if page % 10 == 9 { queries.append(q) }
            if cursor == nil { break }
        }
        return queries
    }

    /// Runs `direct` and `api` in four alternating rounds, so drift in osmem (stalls, warm-up) hits both alike.
    static func alternate(requests: Int, concurrency: Int, direct: @escaping @Sendable (Int) async throws -> Void,
                          api: @escaping @Sendable (Int) async throws -> Void) async throws -> (Double, Latencies, Double, Latencies) {
        var directSeconds = 0.0, apiSeconds = 0.0
        var directLatency = Latencies(), apiLatency = Latencies()
        let rounds = 4
        for _ in 0..<rounds {
            let (ds, dl) = try await load(total: requests / rounds, concurrency: concurrency, direct)
            let (s, l) = try await load(total: requests / rounds, concurrency: concurrency, api)
            directSeconds += ds; directLatency.add(dl)
            apiSeconds += s; apiLatency.add(l)
        }
        return (directSeconds, directLatency, apiSeconds, apiLatency)
    }

    /// The in-process cost of verifying one bearer token, as every request pays it.
    static func verificationMicroseconds(secret: String, token bearer: String, rounds: Int = 5000) async throws -> Double {
        let verifier = try await AccessTokenVerifier(configuration: AuthConfiguration(jwtSecret: secret))
        let token = String(bearer.dropFirst("Bearer ".count))
        let start = ContinuousClock.now
        for _ in 0..<rounds { _ = try await verifier.principal(token: token) }
        return (ContinuousClock.now - start).seconds * 1_000_000 / Double(rounds)
    }
}

/// A stub cluster answering every search with one canned result.
enum CannedSearch {
    static func start(body: [UInt8], logger: Logger) async throws -> (port: Int, task: Task<Void, any Error>) {
        let router = Router()
        router.get("/") { _, _ in Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "{}"))) }
        router.post("/:index/_search") { request, _ in
            for try await _ in request.body {}
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
        return try await StubServer.start(router, name: "canned", logger: logger)
    }
}
