import OrderDomain
import LibPQClient

/// SQL fragments shared by every statement of the system: timestamps travel as
/// epoch milliseconds so nothing is lost or rounded between Swift and PostgreSQL.
public enum SQL {
    /// `column` as epoch milliseconds, named `alias` (default: the column's own name).
    public static func ms(_ column: String, as alias: String? = nil) -> String {
        "(extract(epoch FROM \(column)) * 1000)::bigint AS \(alias ?? column)"
    }

    /// `column` as epoch microseconds, named `alias`.
    public static func us(_ column: String, as alias: String) -> String { "(extract(epoch FROM \(column)) * 1000000)::bigint AS \(alias)" }

    /// The timestamp of the epoch-milliseconds parameter `$n`.
    public static func ts(_ parameter: Int) -> String { timestamp(fromMilliseconds: "$\(parameter)::bigint") }

    /// The timestamp of an epoch-milliseconds SQL expression.
    public static func timestamp(fromMilliseconds expression: String) -> String {
        "('epoch'::timestamptz + \(expression) * interval '1 millisecond')"
    }

    static let orderColumns = """
        id, version, status, customer_id, currency, ship_line1, ship_line2, ship_city, ship_postal_code, ship_country,
        note, payment_reference, carrier, tracking_number, cancel_reason,
        \(ms("created_at")), \(ms("updated_at")), \(ms("paid_at")), \(ms("shipped_at")), \(ms("delivered_at")), \(ms("cancelled_at"))
        """

    static let customerColumns = "id, version, name, email, country, \(ms("created_at")), \(ms("updated_at"))"
}

extension PostgresRow {
    func timestamp(_ name: String) -> Timestamp? { int64(name).map(Timestamp.init(millisecondsSinceEpoch:)) }
}

extension Timestamp: PostgresBindable {
    public var postgresText: String { String(millisecondsSinceEpoch) }
}

extension Customer {
    init(row: PostgresRow) {
        self.init(
            id: row.string("id")!, version: row.int("version")!, name: row.string("name")!, email: row.string("email")!,
            country: row.string("country")!, createdAt: row.timestamp("created_at")!, updatedAt: row.timestamp("updated_at")!
        )
    }
}

extension Order {
    init(row: PostgresRow, items: [OrderLine]) {
        self.init(
            id: row.string("id")!, version: row.int("version")!, status: OrderStatus(rawValue: row.string("status")!)!,
            customerID: row.string("customer_id")!, currency: row.string("currency")!, items: items,
            shippingAddress: ShippingAddress(
                line1: row.string("ship_line1")!, line2: row.string("ship_line2"), city: row.string("ship_city")!,
                postalCode: row.string("ship_postal_code")!, country: row.string("ship_country")!
            ),
            note: row.string("note"), paymentReference: row.string("payment_reference"), carrier: row.string("carrier"),
            trackingNumber: row.string("tracking_number"), cancelReason: row.string("cancel_reason"),
            createdAt: row.timestamp("created_at")!, updatedAt: row.timestamp("updated_at")!, paidAt: row.timestamp("paid_at"),
            shippedAt: row.timestamp("shipped_at"), deliveredAt: row.timestamp("delivered_at"),
            cancelledAt: row.timestamp("cancelled_at")
        )
    }
}
