import JSONSupport
import OrderDomain

/// The write API's command bodies, from parsed JSON to domain commands plus
/// every offending field (at most `FieldError.maximumListed`). Work is bounded
/// by the body's size: `items` is counted before any item is examined.
public enum CommandBodies {
    public struct NewCustomer: Sendable, Equatable {
        public let name: String, email: String, country: String
    }

    public struct CustomerChange: Sendable, Equatable {
        public let name: String?, email: String?, country: String?
    }

    /// The fields each body may have (anything else is a 422), by the name of
    /// its schema in the write API's OpenAPI document; a test holds the two equal.
    public static let fields: [String: Set<String>] = [
        "NewCustomer": customerFields, "CustomerChange": customerFields, "NewOrder": orderFields, "NewOrderItem": itemFields,
        "NewShippingAddress": addressFields, "Payment": paymentFields, "Shipment": shipmentFields, "Delivery": [],
        "Cancellation": cancellationFields,
    ]
    static let customerFields: Set<String> = ["name", "email", "country"]
    static let orderFields: Set<String> = ["customer_id", "currency", "items", "shipping_address", "note"]
    static let itemFields: Set<String> = ["sku", "name", "quantity", "unit_price"]
    static let addressFields: Set<String> = ["line1", "line2", "city", "postal_code", "country"]
    public static let paymentFields: Set<String> = ["payment_reference", "amount"]
    public static let shipmentFields: Set<String> = ["carrier", "tracking_number"]
    public static let cancellationFields: Set<String> = ["reason"]

    public static func newCustomer(_ object: JSONObject) -> (NewCustomer, [FieldError]) {
        var reader = FieldReader(object)
        reader.rejectUnknown(allowed: customerFields)
        let customer = NewCustomer(name: reader.string("name"), email: reader.string("email"), country: reader.string("country"))
        // Type errors and rule errors together, so every offending field is listed.
        return (customer, reader.combined(with: Customer.validate(name: customer.name, email: customer.email, country: customer.country)))
    }

    public static func customerChange(_ object: JSONObject) -> (CustomerChange, [FieldError]) {
        var reader = FieldReader(object)
        reader.rejectUnknown(allowed: customerFields)
        let change = CustomerChange(name: reader.optionalString("name"), email: reader.optionalString("email"),
                                    country: reader.optionalString("country"))
        for key in ["name", "email", "country"] where object[key]?.isNull == true {
            reader.reportElement(key, "must not be null")
        }
        return (change, reader.combined(with: Customer.validate(name: change.name, email: change.email, country: change.country)))
    }

    public static func placeOrder(_ object: JSONObject) -> (PlaceOrder, [FieldError]) {
        var reader = FieldReader(object)
        reader.rejectUnknown(allowed: orderFields)
        let customerID = reader.string("customer_id")
        let currency = reader.string("currency")
        let note = reader.optionalString("note")
        let items = orderItems(&reader)
        let address = shippingAddress(&reader)
        let command = PlaceOrder(customerID: customerID, currency: currency, items: items, shippingAddress: address, note: note)
        return (command, reader.combined(with: Order.validate(command)))
    }

    /// The items, or none when `items` is missing, mistyped or longer than the
    /// limit (then `items` itself is the error and no item is looked at).
    static func orderItems(_ reader: inout FieldReader) -> [PlaceOrder.Item] {
        guard let array = reader.array("items") else { return [] }
        guard array.count <= Order.maxItems else {
            reader.reportElement("items", "must contain between 1 and \(Order.maxItems) items")
            return []
        }
        var items: [PlaceOrder.Item] = []
        for (i, element) in array.enumerated() {
            guard case .object(let itemObject) = element else {
                reader.reportElement("items[\(i)]", "must be an object")
                continue
            }
            var itemReader = FieldReader(itemObject, path: "items[\(i)]")
            itemReader.rejectUnknown(allowed: itemFields)
            items.append(PlaceOrder.Item(
                sku: itemReader.string("sku"), name: itemReader.string("name"),
                quantity: itemReader.integer("quantity"), unitPrice: itemReader.decimalString("unit_price")
            ))
            reader.merge(itemReader)
        }
        return items
    }

    static func shippingAddress(_ reader: inout FieldReader) -> ShippingAddress {
        guard let addressObject = reader.objectField("shipping_address") else {
            return ShippingAddress(line1: "", line2: nil, city: "", postalCode: "", country: "")
        }
        var addressReader = FieldReader(addressObject, path: "shipping_address")
        addressReader.rejectUnknown(allowed: addressFields)
        let address = ShippingAddress(
            line1: addressReader.string("line1"), line2: addressReader.optionalString("line2"),
            city: addressReader.string("city"), postalCode: addressReader.string("postal_code"),
            country: addressReader.string("country")
        )
        reader.merge(addressReader)
        return address
    }
}
