/// Every field of the order index, by its path in the document and the
/// mapping (`mappings/orders.json`): the one definition the query builder, the
/// hit renderer, `verify` and the tests use. `ReadModelTests` fail when the
/// mapping or the document writer disagree with this list.
public struct IndexField: Sendable, Hashable, CustomStringConvertible {
    /// Dotted path (`customer.name`, `item_skus.text`).
    public let path: String

    init(_ path: String) { self.path = path }

    /// The last component: the key inside its parent object.
    public var leaf: String { String(path.split(separator: ".").last ?? Substring(path)) }

    /// The path as the components of a JSON lookup in a `_source` document.
    public var components: [String] { path.split(separator: ".").map(String.init) }

    public var description: String { path }

    // Order.
    public static let orderID = IndexField("order_id")
    public static let version = IndexField("version")
    public static let status = IndexField("status")
    public static let currency = IndexField("currency")
    public static let total = IndexField("total")
    public static let itemCount = IndexField("item_count")
    public static let shippingCountry = IndexField("shipping_country")
    public static let shippingCity = IndexField("shipping_city")
    public static let trackingNumber = IndexField("tracking_number")
    public static let note = IndexField("note")
    public static let createdAt = IndexField("created_at")
    public static let updatedAt = IndexField("updated_at")
    public static let createdMonth = IndexField("created_month")
    // Customer (an object).
    public static let customer = IndexField("customer")
    public static let customerID = IndexField("customer.id")
    public static let customerVersion = IndexField("customer.version")
    public static let customerName = IndexField("customer.name")
    public static let customerEmail = IndexField("customer.email")
    public static let customerCountry = IndexField("customer.country")
    // Lines (nested) and their flattened copies for search.
    public static let items = IndexField("items")
    public static let itemSKU = IndexField("items.sku")
    public static let itemName = IndexField("items.name")
    public static let itemQuantity = IndexField("items.quantity")
    public static let itemUnitPrice = IndexField("items.unit_price")
    public static let itemNames = IndexField("item_names")
    public static let itemSKUs = IndexField("item_skus")
    // Multi-fields: other analyses of the same text.
    public static let customerNameRaw = IndexField("customer.name.raw")
    public static let customerEmailText = IndexField("customer.email.text")
    public static let itemSKUsText = IndexField("item_skus.text")
    public static let shippingCityRaw = IndexField("shipping_city.raw")
    public static let trackingNumberText = IndexField("tracking_number.text")

    /// Fields of the document itself, in the order the writer emits them.
    public static let documentFields: [IndexField] = [
        orderID, version, status, customer, customerID, customerVersion, customerName, customerEmail, customerCountry, currency, total,
        itemCount, items, itemSKU, itemName, itemQuantity, itemUnitPrice, itemNames, itemSKUs, shippingCountry, shippingCity,
        trackingNumber, note, createdAt, updatedAt, createdMonth,
    ]

    /// Multi-fields the mapping adds (never in `_source`).
    public static let multiFields: [IndexField] = [customerNameRaw, customerEmailText, itemSKUsText, shippingCityRaw, trackingNumberText]

    /// Fields kept out of `_source` in search answers (only for matching).
    public static let searchOnly: [IndexField] = [itemNames, itemSKUs]
}
