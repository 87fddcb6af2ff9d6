import Testing
import ElasticsearchClient
import Foundation
import JSONSupport
import OrderDomain
import OrderSearchAPI
import LibPQClient
import ServiceSupport

/// A deterministic data set of 120 orders written straight into PostgreSQL
/// (with chosen creation times across four months), indexed by the real
/// indexer, and served by the real search API. Expected answers are computed
/// from the same seed, independently of Elasticsearch.
struct SearchFixture {
    struct Seed {
        let id: String
        let customer: Int
        let status: String
        let currency: String
        let country: String
        let city: String
        let items: [(sku: String, name: String, quantity: Int, cents: Int)]
        let createdAt: Timestamp
        var totalCents: Int { items.reduce(0) { $0 + $1.quantity * $1.cents } }
        var month: String { createdAt.yearMonth }
    }

    static let customers = [("cus_seed_a", "Alice Smith", "alice@example.com"), ("cus_seed_b", "Bob Jones", "bob@example.org"),
                            ("cus_seed_c", "Zoë Müller", "zoe@example.de")]
    static let statuses = ["pending", "paid", "shipped", "delivered", "cancelled"]
    static let catalog = [("MUG-1", "Blue Coffee Mug"), ("SHOE-2", "Red Running Shoes"), ("SOCK-3", "Wool Socks"), ("LAMP-4", "Desk Lamp")]

    static let seeds: [Seed] = (0..<120).map { i in
        let itemCount = 1 + i % 3
        let items = (0..<itemCount).map { j -> (String, String, Int, Int) in
            let product = catalog[(i + j) % catalog.count]
            return (product.0, product.1, 1 + (i + j) % 4, [999, 2450, 12000, 45, 30000][(i * 7 + j) % 5])
        }
        let base = Timestamp(rfc3339: "2026-07-01T00:00:00Z")!.millisecondsSinceEpoch
        let created = Timestamp(millisecondsSinceEpoch: base + Int64(i % 4) * 31 * 86_400_000 + Int64(i) * 3_600_000)
        return Seed(id: String(format: "ord_seed_%03d", i), customer: i % 3, status: statuses[i % 5], currency: ["EUR", "USD", "GBP"][i % 3],
                    country: ["DE", "FR", "US", "GB"][i % 4], city: ["Berlin", "Paris", "Boston", "London"][i % 4], items: items, createdAt: created)
    }

    let indexer: IndexerHarness
    let search: TestHTTP
    let searchTask: Task<Void, any Error>
    let running: IndexerHarness.RunningIndexer

    static let shared = Task { try await SearchFixture.make() }

    static func make() async throws -> SearchFixture {
        let h = try await IndexerHarness.start()
        try await h.database.pool.transaction { connection in
            for (id, name, email) in customers {
                try connection.query("INSERT INTO customers VALUES ($1, 1, $2, $3, 'DE', now(), now())", [id, name, email])
            }
            for seed in seeds {
                try connection.query("""
                    INSERT INTO orders (id, version, status, customer_id, currency, total, ship_line1, ship_city, ship_postal_code, ship_country,
                                        tracking_number, note, created_at, updated_at)
                    VALUES ($1, 1, $2, $3, $4, $5::numeric / 100, 'Street 1', $6, '12345', $7, $8, $9,
                            'epoch'::timestamptz + $10::bigint * interval '1 millisecond', 'epoch'::timestamptz + $10::bigint * interval '1 millisecond')
                    """, [seed.id, seed.status, customers[seed.customer].0, seed.currency, seed.totalCents, seed.city, seed.country,
                          seed.status == "shipped" ? "TRK\(seed.id.suffix(3))" : nil, seed.id.hasSuffix("7") ? "gift wrap please" : nil,
                          seed.createdAt.millisecondsSinceEpoch])
                for (position, item) in seed.items.enumerated() {
                    try connection.query("INSERT INTO order_items VALUES ($1, $2, $3, $4, $5, $6::numeric / 100)",
                                         [seed.id, position, item.sku, item.name, item.quantity, item.cents])
                }
                try connection.query("""
                    INSERT INTO outbox (aggregate_type, aggregate_id, aggregate_version, event_type, payload, occurred_at)
                    VALUES ('order', $1, 1, 'OrderPlaced', '{}', now())
                    """, [seed.id])
            }
        }
        let running = try h.startIndexer()
        guard await eventually(timeout: .seconds(60), { (try? await h.elasticsearch.count(h.alias)) == seeds.count }) else {
            throw FixtureError.notIndexed
        }
        let client = ElasticsearchClient(configuration: .init(baseURL: try TestEnvironment.elasticsearchURL))
        let (port, task) = try await startSearchAPI(client: client, alias: h.alias)
        let search = TestHTTP(base: "http://127.0.0.1:\(port)", bearer: try await TestEnvironment.token([.staff]))
        return SearchFixture(indexer: h, search: search, searchTask: task, running: running)
    }

    enum FixtureError: Error { case notIndexed }

    /// Expected facet counts (value → count) over the seeds that pass `filter`.
    static func counts(_ seeds: [Seed], by key: (Seed) -> String) -> [String: Int] {
        seeds.reduce(into: [:]) { $0[key($1), default: 0] += 1 }
    }

    static func bucket(_ cents: Int) -> String {
        switch cents {
        case ..<5000: "0-50"
        case ..<10000: "50-100"
        case ..<25000: "100-250"
        case ..<100_000: "250-1000"
        default: "1000-"
        }
    }
}

extension JSONValue {
    /// `[{"value": v, "count": n}, …]` → `[v: n]`
    var facetCounts: [String: Int] {
        var result: [String: Int] = [:]
        for entry in arrayValue ?? [] { result[entry["value"]!.stringValue!] = entry["count"]!.intValue! }
        return result
    }
}

/// Runs the real search API (the same `buildSearchApplication` as `main`) with the test keys.
func startSearchAPI(client: ElasticsearchClient, alias: String, limits: HTTPServerLimits = .init(),
                    consistency: ConsistencyWaitPolicy = .init()) async throws -> (Int, Task<Void, any Error>) {
    let auth = try await TestEnvironment.authMode(), signer = try TestEnvironment.signer
    return try await startServer { onRunning in
        buildSearchApplication(client: client, alias: alias, auth: auth, signer: signer, address: HostAndPort(host: "127.0.0.1", port: 0),
                               limits: limits, consistency: consistency, logger: TestEnvironment.logger, onServerRunning: onRunning)
    }
}
