import OrderDomain
import LibPQClient

/// Loading and saving aggregates on one connection (inside the caller's transaction).
enum CustomerRepository {
    static func find(_ id: String, forUpdate: Bool, on connection: LibPQConnection) throws -> Customer? {
        let sql = "SELECT \(SQL.customerColumns) FROM customers WHERE id = $1" + (forUpdate ? " FOR UPDATE" : "")
        return try connection.query(sql, [id]).first.map(Customer.init(row:))
    }

    static func insert(_ c: Customer, on connection: LibPQConnection) throws {
        try connection.query(
            "INSERT INTO customers (id, version, name, email, country, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, \(SQL.ts(6)), \(SQL.ts(7)))",
            [c.id, c.version, c.name, c.email, c.country, c.createdAt, c.updatedAt]
        )
    }

    static func update(_ c: Customer, on connection: LibPQConnection) throws {
        try connection.query(
            "UPDATE customers SET version = $2, name = $3, email = $4, country = $5, updated_at = \(SQL.ts(6)) WHERE id = $1",
            [c.id, c.version, c.name, c.email, c.country, c.updatedAt]
        )
    }
}

enum OrderRepository {
    static func find(_ id: String, forUpdate: Bool, on connection: LibPQConnection) throws -> Order? {
        let sql = "SELECT \(SQL.orderColumns) FROM orders WHERE id = $1" + (forUpdate ? " FOR UPDATE" : "")
        guard let row = try connection.query(sql, [id]).first else { return nil }
        let items = try connection.query(
            "SELECT sku, name, quantity, unit_price::text FROM order_items WHERE order_id = $1 ORDER BY position", [id]
        ).map { OrderLine(sku: $0.string(0)!, name: $0.string(1)!, quantity: $0.int(2)!, unitPrice: Money(decimal: $0.string(3)!)!) }
        return Order(row: row, items: items)
    }

    static func insert(_ o: Order, on connection: LibPQConnection) throws {
        try connection.query(
            """
            INSERT INTO orders (id, version, status, customer_id, currency, total, ship_line1, ship_line2, ship_city,
                ship_postal_code, ship_country, note, created_at, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6::numeric, $7, $8, $9, $10, $11, $12, \(SQL.ts(13)), \(SQL.ts(14)))
            """,
            [o.id, o.version, o.status.rawValue, o.customerID, o.currency, o.total.description, o.shippingAddress.line1,
             o.shippingAddress.line2, o.shippingAddress.city, o.shippingAddress.postalCode, o.shippingAddress.country,
             o.note, o.createdAt, o.updatedAt]
        )
        // One statement for all lines: unnest parallel arrays. Lines are written only here and never
        // changed; the read model reads them without a common snapshot (`OrderDocumentSource.documents`).
        try connection.query(
            """
            INSERT INTO order_items (order_id, position, sku, name, quantity, unit_price)
            SELECT $1, p, s, n, q, u FROM unnest($2::int[], $3::text[], $4::text[], $5::int[], $6::numeric[]) AS t(p, s, n, q, u)
            """,
            [o.id,
             PostgresTextArray(o.items.indices.map { String($0) }),
             PostgresTextArray(o.items.map(\.sku)),
             PostgresTextArray(o.items.map(\.name)),
             PostgresTextArray(o.items.map { String($0.quantity) }),
             PostgresTextArray(o.items.map { $0.unitPrice.description })]
        )
    }

    static func update(_ o: Order, on connection: LibPQConnection) throws {
        try connection.query(
            """
            UPDATE orders SET version = $2, status = $3, payment_reference = $4, carrier = $5, tracking_number = $6,
                cancel_reason = $7, updated_at = \(SQL.ts(8)),
                paid_at = \(SQL.ts(9)), shipped_at = \(SQL.ts(10)), delivered_at = \(SQL.ts(11)), cancelled_at = \(SQL.ts(12))
            WHERE id = $1
            """,
            [o.id, o.version, o.status.rawValue, o.paymentReference, o.carrier, o.trackingNumber, o.cancelReason,
             o.updatedAt, o.paidAt, o.shippedAt, o.deliveredAt, o.cancelledAt]
        )
    }
}

enum OutboxWriter {
    static func append(_ event: DomainEvent, payload: String, on connection: LibPQConnection) throws {
        try connection.query(
            """
            INSERT INTO outbox (aggregate_type, aggregate_id, aggregate_version, event_type, payload, occurred_at)
            VALUES ($1, $2, $3, $4, $5::jsonb, \(SQL.ts(6)))
            """,
            [event.aggregateType.rawValue, event.aggregateID, event.aggregateVersion, event.kind.rawValue, payload, event.occurredAt]
        )
    }
}
