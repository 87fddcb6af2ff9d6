import OrderDomain
import LibPQClient

/// Reads order documents from the write database: the same builder serves the
/// indexer, the reindex and verify, so all three agree on content and version.
public enum OrderDocumentSource {
    static let selectDocuments = """
        SELECT o.id, o.version, o.status, o.currency, o.total::text, o.ship_country, o.ship_city, o.tracking_number, o.note,
               (extract(epoch FROM o.created_at) * 1000)::bigint, (extract(epoch FROM o.updated_at) * 1000)::bigint,
               c.id, c.version, c.name, c.email, c.country
        FROM orders o JOIN customers c ON c.id = o.customer_id
        """

    /// Documents for the given ids (ids that do not exist are left out), in id order.
    public static func documents(ids: [String], on connection: LibPQConnection) throws -> [OrderDocument] {
        guard !ids.isEmpty else { return [] }
        let array = PostgresTextArray(ids)
        let orders = try connection.query(selectDocuments + " WHERE o.id = ANY($1::text[]) ORDER BY o.id", [array])
        let items = try connection.query(
            "SELECT order_id, sku, name, quantity, unit_price::text FROM order_items WHERE order_id = ANY($1::text[]) ORDER BY order_id, position",
            [array]
        )
        return assemble(orders: orders, items: items)
    }

    /// Documents of orders with id > `after`, in id order, at most `limit`:
    /// keyset pagination for streaming a whole table in flat memory.
    public static func page(after: String?, limit: Int, on connection: LibPQConnection) throws -> [OrderDocument] {
        let orders = try connection.query(
            selectDocuments + " WHERE o.id > $1 ORDER BY o.id LIMIT $2", [after ?? "", limit]
        )
        guard let last = orders.isEmpty ? nil : orders[orders.count - 1].string(0) else { return [] }
        let items = try connection.query(
            """
            SELECT order_id, sku, name, quantity, unit_price::text FROM order_items
            WHERE order_id > $1 AND order_id <= $2 ORDER BY order_id, position
            """,
            [after ?? "", last]
        )
        return assemble(orders: orders, items: items)
    }

    static func assemble(orders: PostgresRows, items: PostgresRows) -> [OrderDocument] {
        var documents: [OrderDocument] = []
        documents.reserveCapacity(orders.count)
        var itemIndex = 0
        let itemCount = items.count
        for row in orders {
            let id = row.string(0)!
            var lines: [OrderDocument.Line] = []
            // Both results are ordered by order id, so one merge pass pairs them.
            while itemIndex < itemCount, let itemOrder = items[itemIndex].string(0), itemOrder <= id {
                if itemOrder == id {
                    let item = items[itemIndex]
                    lines.append(.init(sku: item.string(1)!, name: item.string(2)!, quantity: item.int(3)!, unitPrice: item.string(4)!))
                }
                itemIndex += 1
            }
            documents.append(OrderDocument(
                orderID: id, version: row.int(1)!, status: row.string(2)!, customerID: row.string(11)!,
                customerVersion: row.int(12)!, customerName: row.string(13)!, customerEmail: row.string(14)!,
                customerCountry: row.string(15)!, currency: row.string(3)!, total: row.string(4)!, items: lines,
                shippingCountry: row.string(5)!, shippingCity: row.string(6)!, trackingNumber: row.string(7), note: row.string(8),
                createdAt: Timestamp(millisecondsSinceEpoch: row.int64(9)!), updatedAt: Timestamp(millisecondsSinceEpoch: row.int64(10)!)
            ))
        }
        return documents
    }

    /// Ids of a customer's orders after `after`, for fanning out a customer change.
    public static func orderIDs(ofCustomer customerID: String, after: String?, limit: Int, on connection: LibPQConnection) throws -> [String] {
        try connection.query(
            "SELECT id FROM orders WHERE customer_id = $1 AND id > $2 ORDER BY id LIMIT $3", [customerID, after ?? "", limit]
        ).map { $0.string(0)! }
    }
}
