import OrderDomain
import OrderStore
import LibPQClient

/// A deterministic data set: `orders` orders with 1–5 lines from realistic
/// names, countries, statuses and currencies, for `orders / 5` customers.
/// Written with multi-row statements in batches (fast, flat memory).
public struct DataSet: Sendable {
    public let orders: Int
    public let seed: UInt64

    public init(orders: Int, seed: UInt64 = 42) {
        self.orders = orders
        self.seed = seed
    }

    static let firstNames = ["Alice", "Bob", "Chloé", "Dmitri", "Emma", "François", "Greta", "Hiroshi", "Ines", "Jonas", "Kerstin", "Liam",
                             "María", "Noah", "Olga", "Pedro", "Quinn", "Rosa", "Søren", "Tomás", "Ulla", "Viktor", "Wei", "Yara", "Zoë"]
    static let lastNames = ["Smith", "Müller", "García", "Rossi", "Dubois", "Kowalski", "Johansson", "Novak", "Silva", "Tanaka", "Nguyen",
                            "O'Brien", "Schmidt", "Jensen", "Costa", "Kim", "Larsen", "Fischer", "Moreau", "Ivanova"]
    static let products = ["Blue Coffee Mug", "Running Shoes", "Wool Socks", "Desk Lamp", "Yoga Mat", "Water Bottle", "Laptop Sleeve",
                           "Notebook A5", "Wireless Mouse", "Green Tea 100g", "Espresso Beans", "Cotton T-Shirt", "Rain Jacket",
                           "Cast Iron Pan", "Phone Charger", "Leather Wallet", "Sunglasses", "Backpack 20L", "Scented Candle", "Puzzle 1000"]
    static let places = [("DE", "Berlin"), ("DE", "Hamburg"), ("FR", "Paris"), ("FR", "Lyon"), ("US", "Boston"), ("US", "Austin"),
                         ("GB", "London"), ("IT", "Milano"), ("ES", "Madrid"), ("NL", "Utrecht"), ("SE", "Malmö"), ("PL", "Kraków")]
    static let currencies = ["EUR", "EUR", "EUR", "USD", "GBP", "SEK", "PLN"]
    static let statuses = ["pending", "paid", "paid", "shipped", "delivered", "delivered", "cancelled"]

    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            var x = state
            x ^= x >> 33
            x = x &* 0xff51_afd7_ed55_8ccd
            x ^= x >> 33
            return x
        }
        mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    public static func orderID(_ i: Int) -> String { "ord_b" + String(repeating: "0", count: max(0, 8 - String(i).count)) + String(i) }

    /// Inserts customers, orders and lines; with `outbox`, one OrderPlaced event per order (a backlog).
    public func load(into pool: PostgresPool, outbox: Bool, batch: Int = 2000, offset: Int = 0) async throws {
        if offset == 0 { try await loadCustomers(into: pool, batch: batch) }
        try await loadOrders(into: pool, outbox: outbox, batch: batch, offset: offset)
    }

    var customers: Int { max(1, orders / 5) }

    func loadCustomers(into pool: PostgresPool, batch: Int) async throws {
        var rng = Random(state: seed)
        for start in stride(from: 0, to: customers, by: batch) {
            var ids: [String] = [], names: [String] = [], emails: [String] = [], countries: [String] = []
            for c in start..<min(customers, start + batch) {
                let first = Self.firstNames[rng.int(Self.firstNames.count)], last = Self.lastNames[rng.int(Self.lastNames.count)]
                ids.append("cus_b\(c)")
                names.append("\(first) \(last)")
                emails.append("\(first.lowercased()).\(last.lowercased().filter(\.isLetter)).\(c)@example.com")
                countries.append(Self.places[rng.int(Self.places.count)].0)
            }
            try await pool.query("""
                INSERT INTO customers (id, version, name, email, country, created_at, updated_at)
                SELECT i, 1, n, e, c, now(), now() FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS t(i, n, e, c)
                """, [PostgresTextArray(ids), PostgresTextArray(names), PostgresTextArray(emails), PostgresTextArray(countries)])
        }
    }

    func loadOrders(into pool: PostgresPool, outbox: Bool, batch: Int, offset: Int) async throws {
        var rng = Random(state: seed &+ UInt64(offset) &* 7919)
        let base = Timestamp(rfc3339: "2025-01-01T00:00:00Z")!.millisecondsSinceEpoch
        for start in stride(from: offset, to: offset + orders, by: batch) {
            var o: [[String]] = Array(repeating: [], count: 10)
            var it: [[String]] = Array(repeating: [], count: 6)
            for i in start..<min(offset + orders, start + batch) {
                let id = Self.orderID(i)
                let place = Self.places[rng.int(Self.places.count)]
                let lines = 1 + rng.int(5)
                var total = 0
                for position in 0..<lines {
                    let product = (rng.int(Self.products.count) + position) % Self.products.count
                    let quantity = 1 + rng.int(4)
                    let cents = 199 + rng.int(30_000)
                    total += quantity * cents
                    it[0].append(id); it[1].append(String(position)); it[2].append("SKU-\(product)-\(position)")
                    it[3].append(Self.products[product]); it[4].append(String(quantity)); it[5].append(String(cents))
                }
                let created = base + Int64(rng.int(700)) * 86_400_000 + Int64(rng.int(86_400_000))
                o[0].append(id); o[1].append(Self.statuses[rng.int(Self.statuses.count)]); o[2].append("cus_b\(i % customers)")
                o[3].append(Self.currencies[rng.int(Self.currencies.count)]); o[4].append(String(total)); o[5].append(place.1)
                o[6].append(place.0); o[7].append(String(created)); o[8].append(String(1 + rng.int(3))); o[9].append("\(i % 97) Main Street")
            }
            let orderColumns = o.map { PostgresTextArray($0) }, itemColumns = it.map { PostgresTextArray($0) }, ids = PostgresTextArray(o[0])
            try await pool.transaction { connection in
                try connection.query("""
                    INSERT INTO orders (id, version, status, customer_id, currency, total, ship_line1, ship_city, ship_postal_code,
                                        ship_country, created_at, updated_at)
                    SELECT i, v, s, c, cur, t / 100.0, l1, city, '10115', country,
                           \(SQL.timestamp(fromMilliseconds: "ts")), \(SQL.timestamp(fromMilliseconds: "ts"))
                    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::bigint[], $9::int[], $10::text[])
                         AS x(i, s, c, cur, t, city, country, ts, v, l1)
                    """, orderColumns)
                try connection.query("""
                    INSERT INTO order_items (order_id, position, sku, name, quantity, unit_price)
                    SELECT o, p, s, n, q, u / 100.0 FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::int[], $6::int[]) AS x(o, p, s, n, q, u)
                    """, itemColumns)
                if outbox {
                    try connection.query("""
                        INSERT INTO outbox (aggregate_type, aggregate_id, aggregate_version, event_type, payload, occurred_at)
                        SELECT 'order', i, 1, 'OrderPlaced', '{}', now() FROM unnest($1::text[]) AS x(i)
                        """, [ids])
                }
            }
        }
    }
}
