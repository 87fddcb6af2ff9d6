import Foundation
import LibPQClient

/// The search benchmark's queries written as SQL against the write database: what a team that
/// stayed on one PostgreSQL would run. Text goes through `pg_trgm` (word similarity, so typos
/// match) over the joined tables, filters through B-tree indexes, each facet is a `GROUP BY`
/// without its own selection (multi-select, as the search API does), and deep pages are keyset
/// pages. Every value is a parameter.
struct SQLSearch: Sendable {
    var text: String?
    var statuses: [String] = []
    var countries: [String] = []
    var currencies: [String] = []
    var totalMin: String?
    var totalMax: String?
    var createdFrom: String?
    var createdTo: String?
    var sort = "-created_at"
    var size = 20
    /// Keyset position (created_at in epoch ms, id) for deep pages.
    var after: (Int64, String)?

    /// The indexes such a team would add for these queries (in the benchmark's database only).
    static let indexes = [
        "CREATE EXTENSION IF NOT EXISTS pg_trgm",
        "CREATE INDEX IF NOT EXISTS bench_customers_name_trgm ON customers USING gin (name gin_trgm_ops)",
        "CREATE INDEX IF NOT EXISTS bench_customers_email_trgm ON customers USING gin (email gin_trgm_ops)",
        "CREATE INDEX IF NOT EXISTS bench_items_name_trgm ON order_items USING gin (name gin_trgm_ops)",
        "CREATE INDEX IF NOT EXISTS bench_items_sku ON order_items (sku text_pattern_ops)",
        "CREATE INDEX IF NOT EXISTS bench_orders_city_trgm ON orders USING gin (ship_city gin_trgm_ops)",
        "CREATE INDEX IF NOT EXISTS bench_orders_status ON orders (status)",
        "CREATE INDEX IF NOT EXISTS bench_orders_country ON orders (ship_country)",
        "CREATE INDEX IF NOT EXISTS bench_orders_total ON orders (total)",
        "CREATE INDEX IF NOT EXISTS bench_orders_created ON orders (created_at DESC, id DESC)",
        "ANALYZE",
    ]

    /// The same query string the search API gets (`q=…&status=a,b&…`).
    init(queryString: String) {
        for pair in queryString.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            let value = parts[1].removingPercentEncoding ?? parts[1]
            let list = value.split(separator: ",").map(String.init)
            switch parts[0] {
            case "q": text = value
            case "status": statuses = list
            case "country": countries = list
            case "currency": currencies = list
            case "total_min": totalMin = value
            case "total_max": totalMax = value
            case "created_from": createdFrom = value
            case "created_to": createdTo = value
            case "sort": sort = value
            case "size": size = Int(value) ?? 20
            default: continue
            }
        }
    }

    private enum Facet { case status, country, currency }

    /// Runs the page, the total and three facets in one short read-only transaction.
    func run(on pool: PostgresPool) async throws {
        let search = self
        try await pool.transaction(isolation: .repeatableReadReadOnly) { connection in
            var (page, parameters) = search.filtered(except: nil)
            if let after = search.after {
                parameters += [after.0, after.1]
                page += " AND (o.created_at, o.id) < ('epoch'::timestamptz + $\(parameters.count - 1)::bigint * interval '1 millisecond', $\(parameters.count))"
            }
            try connection.query("SELECT o.id, o.status, o.total, o.created_at, c.name, c.email" + page
                                 + " ORDER BY \(search.orderBy) LIMIT \(search.size)", parameters)
            let (all, allParameters) = search.filtered(except: nil)
            try connection.query("SELECT count(*)" + all, allParameters)
            for (facet, column) in [(Facet.status, "o.status"), (.country, "o.ship_country"), (.currency, "o.currency")] {
                let (rest, restParameters) = search.filtered(except: facet)
                try connection.query("SELECT \(column), count(*)" + rest + " GROUP BY 1 ORDER BY 2 DESC LIMIT 10", restParameters)
            }
        }
    }

    private var orderBy: String {
        switch sort {
        case "-total": "o.total DESC, o.id DESC"
        case "total": "o.total, o.id"
        case "created_at": "o.created_at, o.id"
        default: "o.created_at DESC, o.id DESC"
        }
    }

    /// `FROM … WHERE …` with every selection but `excluded`'s, and its parameters.
    private func filtered(except excluded: Facet?) -> (String, [(any PostgresBindable)?]) {
        var sql = " FROM orders o JOIN customers c ON c.id = o.customer_id WHERE true"
        var parameters: [(any PostgresBindable)?] = []
        func bind(_ value: any PostgresBindable) -> String {
            parameters.append(value)
            return "$\(parameters.count)"
        }
        if let text {
            let q = bind(text)
            sql += """
                 AND o.id IN (
                    SELECT o2.id FROM orders o2 JOIN customers c2 ON c2.id = o2.customer_id WHERE \(q) <% c2.name OR \(q) <% c2.email
                    UNION SELECT order_id FROM order_items WHERE \(q) <% name OR sku LIKE \(q) || '%'
                    UNION SELECT id FROM orders WHERE \(q) <% ship_city OR id = \(q))
                """
        }
        if excluded != .status, !statuses.isEmpty { sql += " AND o.status = ANY(\(bind(PostgresTextArray(statuses)))::text[])" }
        if excluded != .country, !countries.isEmpty { sql += " AND o.ship_country = ANY(\(bind(PostgresTextArray(countries)))::text[])" }
        if excluded != .currency, !currencies.isEmpty { sql += " AND o.currency = ANY(\(bind(PostgresTextArray(currencies)))::text[])" }
        if let totalMin { sql += " AND o.total >= \(bind(totalMin))::numeric" }
        if let totalMax { sql += " AND o.total <= \(bind(totalMax))::numeric" }
        if let createdFrom { sql += " AND o.created_at >= \(bind(createdFrom))::date" }
        if let createdTo { sql += " AND o.created_at < \(bind(createdTo))::date + 1" }
        return (sql, parameters)
    }
}
