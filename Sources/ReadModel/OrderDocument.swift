import JSONSupport
import OrderDomain

/// The denormalized read-side document of one order: the order, its customer
/// and its lines in one JSON object, as the search contract's hits show it.
public struct OrderDocument: Sendable, Equatable {
    public struct Line: Sendable, Equatable {
        public let sku: String
        public let name: String
        public let quantity: Int
        public let unitPrice: String
    }

    public let orderID: String
    public let version: Int
    public let status: String
    public let customerID: String
    public let customerVersion: Int
    public let customerName: String
    public let customerEmail: String
    public let customerCountry: String
    public let currency: String
    public let total: String
    public let items: [Line]
    public let shippingCountry: String
    public let shippingCity: String
    public let trackingNumber: String?
    public let note: String?
    public let createdAt: Timestamp
    public let updatedAt: Timestamp

    public var externalVersion: Int64 { DocumentVersion(order: version, customer: customerVersion).packed }

    /// About the size of `writeJSON`'s output (without escapes), to size bulk requests by bytes
    /// without serializing twice.
    public var estimatedJSONBytes: Int {
        var bytes = 420
        for text in [orderID, status, customerID, customerName, customerEmail, customerCountry, currency, total, shippingCountry,
                     shippingCity, trackingNumber ?? "", note ?? ""] {
            bytes += text.utf8.count
        }
        for item in items { bytes += 2 * (item.sku.utf8.count + item.name.utf8.count) + item.unitPrice.utf8.count + 60 }
        return bytes
    }

    public func writeJSON(into w: inout JSONWriter) {
        w.raw("{\"order_id\":"); w.string(orderID)
        w.raw(",\"version\":"); w.int(version)
        w.raw(",\"status\":"); w.string(status)
        w.raw(",\"customer\":{\"id\":"); w.string(customerID)
        w.raw(",\"version\":"); w.int(customerVersion)
        w.raw(",\"name\":"); w.string(customerName)
        w.raw(",\"email\":"); w.string(customerEmail)
        w.raw(",\"country\":"); w.string(customerCountry)
        w.raw("},\"currency\":"); w.string(currency)
        w.raw(",\"total\":"); w.string(total)
        w.raw(",\"item_count\":"); w.int(items.count)
        w.raw(",\"items\":[")
        for (i, item) in items.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{\"sku\":"); w.string(item.sku)
            w.raw(",\"name\":"); w.string(item.name)
            w.raw(",\"quantity\":"); w.int(item.quantity)
            w.raw(",\"unit_price\":"); w.string(item.unitPrice)
            w.raw("}")
        }
        w.raw("],\"item_names\":[")
        for (i, item) in items.enumerated() {
            if i > 0 { w.raw(",") }
            w.string(item.name)
        }
        w.raw("],\"item_skus\":[")
        for (i, item) in items.enumerated() {
            if i > 0 { w.raw(",") }
            w.string(item.sku)
        }
        w.raw("],\"shipping_country\":"); w.string(shippingCountry)
        w.raw(",\"shipping_city\":"); w.string(shippingCity)
        w.raw(",\"tracking_number\":"); w.optionalString(trackingNumber)
        w.raw(",\"note\":"); w.optionalString(note)
        w.raw(",\"created_at\":"); w.string(createdAt.rfc3339)
        w.raw(",\"updated_at\":"); w.string(updatedAt.rfc3339)
        w.raw(",\"created_month\":"); w.string(createdAt.yearMonth)
        w.raw("}")
    }
}

/// The Elasticsearch external version of an order document: order version in
/// the high 32 bits, customer version in the low 32. Both only grow and an
/// order never changes customer, so the composite only grows, and a document
/// built from a later read never loses to one built from an earlier read.
public struct DocumentVersion: Sendable, Equatable, CustomStringConvertible {
    public let order: Int
    public let customer: Int

    public init(order: Int, customer: Int) {
        self.order = order
        self.customer = customer
    }

    public init(packed: Int64) {
        self.init(order: Int(packed >> 32), customer: Int(packed & 0xFFFF_FFFF))
    }

    public var packed: Int64 { Int64(order) << 32 | Int64(customer) }

    /// The same packing in SQL, over `orders o JOIN customers c`.
    public static let sqlExpression = "(o.version::bigint << 32) | c.version"

    public var description: String { "\(order)/\(customer)" }
}
