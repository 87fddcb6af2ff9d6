import OrderDomain
import LibPQClient
import OrderStore

/// Reads order documents from the write database: the same builder serves the
/// indexer, the reindex and verify, so all three agree on content and version.
public enum OrderDocumentSource {
    static let selectDocuments = """
        SELECT o.id, o.version, o.status, o.currency, o.total::text AS total, o.ship_country, o.ship_city, o.tracking_number, o.note,
               \(SQL.ms("o.created_at", as: "created_at")), \(SQL.ms("o.updated_at", as: "updated_at")),
               c.id AS customer_id, c.version AS customer_version, c.name AS customer_name, c.email AS customer_email,
               c.country AS customer_country
        FROM orders o JOIN customers c ON c.id = o.customer_id
        """

    static let selectItems = "SELECT order_id, sku, name, quantity, unit_price::text AS unit_price FROM order_items"

    /// Column positions of a documents result, looked up by name once per result.
    struct DocumentColumns {
        let id, version, status, currency, total, shipCountry, shipCity, trackingNumber, note, createdAt, updatedAt: Int
        let customerID, customerVersion, customerName, customerEmail, customerCountry: Int

        init(_ rows: PostgresRows) {
            let c = rows.requiredColumn
            (id, version, status, currency, total) = (c("id"), c("version"), c("status"), c("currency"), c("total"))
            (shipCountry, shipCity, trackingNumber, note) = (c("ship_country"), c("ship_city"), c("tracking_number"), c("note"))
            (createdAt, updatedAt) = (c("created_at"), c("updated_at"))
            (customerID, customerVersion, customerName) = (c("customer_id"), c("customer_version"), c("customer_name"))
            (customerEmail, customerCountry) = (c("customer_email"), c("customer_country"))
        }
    }

    struct ItemColumns {
        let orderID, sku, name, quantity, unitPrice: Int

        init(_ rows: PostgresRows) {
            let c = rows.requiredColumn
            (orderID, sku, name, quantity, unitPrice) = (c("order_id"), c("sku"), c("name"), c("quantity"), c("unit_price"))
        }
    }

    /// Documents for the given ids (ids that do not exist are left out), in id order.
    ///
    /// Needs no transaction (the indexer calls it without one, two round trips less per batch):
    /// an order and its customer come from one statement, so they agree; an order's lines are
    /// written once, with the order, and never change (`OrderRepository.insert`), so the second
    /// statement reads the same lines whatever its snapshot.
    public static func documents(ids: [String], on connection: LibPQConnection) throws -> [OrderDocument] {
        guard !ids.isEmpty else { return [] }
        let array = PostgresTextArray(ids)
        let orders = try connection.query(selectDocuments + " WHERE o.id = ANY($1::text[]) ORDER BY o.id", [array])
        let items = try connection.query(selectItems + " WHERE order_id = ANY($1::text[]) ORDER BY order_id, position", [array])
        return assemble(orders: orders, items: items)
    }

    /// Documents of orders with id > `after`, in id order, at most `limit`:
    /// keyset pagination for streaming a whole table in flat memory.
    public static func page(after: String?, limit: Int, on connection: LibPQConnection) throws -> [OrderDocument] {
        let orders = try connection.query(
            selectDocuments + " WHERE o.id > $1 ORDER BY o.id LIMIT $2", [after ?? "", limit]
        )
        guard let last = orders.isEmpty ? nil : orders[orders.count - 1].string("id") else { return [] }
        let items = try connection.query(selectItems + " WHERE order_id > $1 AND order_id <= $2 ORDER BY order_id, position",
                                         [after ?? "", last])
        return assemble(orders: orders, items: items)
    }

    static func assemble(orders: PostgresRows, items: PostgresRows) -> [OrderDocument] {
        var documents: [OrderDocument] = []
        documents.reserveCapacity(orders.count)
        guard !orders.isEmpty else { return [] }
        let o = DocumentColumns(orders)
        let i = items.isEmpty ? nil : ItemColumns(items)
        var itemIndex = 0
        let itemCount = items.count
        for row in orders {
            let id = row.string(o.id)!
            var lines: [OrderDocument.Line] = []
            // Both results are ordered by order id, so one merge pass pairs them.
            while let i, itemIndex < itemCount, let itemOrder = items[itemIndex].string(i.orderID), itemOrder <= id {
                if itemOrder == id {
                    let item = items[itemIndex]
                    lines.append(.init(sku: item.string(i.sku)!, name: item.string(i.name)!, quantity: item.int(i.quantity)!,
                                       unitPrice: item.string(i.unitPrice)!))
                }
                itemIndex += 1
            }
            documents.append(OrderDocument(
                orderID: id, version: row.int(o.version)!, status: row.string(o.status)!, customerID: row.string(o.customerID)!,
                customerVersion: row.int(o.customerVersion)!, customerName: row.string(o.customerName)!,
                customerEmail: row.string(o.customerEmail)!, customerCountry: row.string(o.customerCountry)!,
                currency: row.string(o.currency)!, total: row.string(o.total)!, items: lines, shippingCountry: row.string(o.shipCountry)!,
                shippingCity: row.string(o.shipCity)!, trackingNumber: row.string(o.trackingNumber), note: row.string(o.note),
                createdAt: Timestamp(millisecondsSinceEpoch: row.int64(o.createdAt)!),
                updatedAt: Timestamp(millisecondsSinceEpoch: row.int64(o.updatedAt)!)
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
