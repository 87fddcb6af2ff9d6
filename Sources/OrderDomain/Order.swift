public enum OrderStatus: String, Sendable, CaseIterable {
    case pending, paid, shipped, delivered, cancelled
}

public struct OrderLine: Sendable, Equatable {
    public let sku: String
    public let name: String
    public let quantity: Int
    public let unitPrice: Money

    public init(sku: String, name: String, quantity: Int, unitPrice: Money) {
        self.sku = sku
        self.name = name
        self.quantity = quantity
        self.unitPrice = unitPrice
    }

    public var lineTotal: Money { unitPrice * quantity }
}

public struct ShippingAddress: Sendable, Equatable {
    public let line1: String
    public let line2: String?
    public let city: String
    public let postalCode: String
    public let country: String

    public init(line1: String, line2: String?, city: String, postalCode: String, country: String) {
        self.line1 = line1
        self.line2 = line2
        self.city = city
        self.postalCode = postalCode
        self.country = country
    }
}

/// `POST /orders` as the domain sees it. Money arrives as the client's decimal
/// text so that the domain decides what a valid amount is.
public struct PlaceOrder: Sendable {
    public struct Item: Sendable {
        public var sku: String
        public var name: String
        public var quantity: Int
        public var unitPrice: String

        public init(sku: String, name: String, quantity: Int, unitPrice: String) {
            self.sku = sku
            self.name = name
            self.quantity = quantity
            self.unitPrice = unitPrice
        }
    }

    public var customerID: String
    public var currency: String
    public var items: [Item]
    public var shippingAddress: ShippingAddress
    public var note: String?

    public init(customerID: String, currency: String, items: [Item], shippingAddress: ShippingAddress, note: String?) {
        self.customerID = customerID
        self.currency = currency
        self.items = items
        self.shippingAddress = shippingAddress
        self.note = note
    }
}

/// The order aggregate. It owns the status machine
/// `pending → paid → shipped → delivered`, with `cancelled` reachable from
/// `pending` and `paid`, and every rule on lines and totals.
public struct Order: Sendable, Equatable {
    public static let maxItems = 100
    public static let quantityRange = 1...1000
    public static let maxUnitPrice = Money(minorUnits: 100_000_000)

    public let id: String
    public private(set) var version: Int
    public private(set) var status: OrderStatus
    public let customerID: String
    public let currency: String
    public let items: [OrderLine]
    public let shippingAddress: ShippingAddress
    public let note: String?
    public private(set) var paymentReference: String?
    public private(set) var carrier: String?
    public private(set) var trackingNumber: String?
    public private(set) var cancelReason: String?
    public let createdAt: Timestamp
    public private(set) var updatedAt: Timestamp
    public private(set) var paidAt: Timestamp?
    public private(set) var shippedAt: Timestamp?
    public private(set) var deliveredAt: Timestamp?
    public private(set) var cancelledAt: Timestamp?

    public var total: Money { items.reduce(.zero) { $0 + $1.lineTotal } }

    /// Rehydrates a stored order.
    public init(
        id: String, version: Int, status: OrderStatus, customerID: String, currency: String, items: [OrderLine],
        shippingAddress: ShippingAddress, note: String?, paymentReference: String?, carrier: String?,
        trackingNumber: String?, cancelReason: String?, createdAt: Timestamp, updatedAt: Timestamp,
        paidAt: Timestamp?, shippedAt: Timestamp?, deliveredAt: Timestamp?, cancelledAt: Timestamp?
    ) {
        self.id = id
        self.version = version
        self.status = status
        self.customerID = customerID
        self.currency = currency
        self.items = items
        self.shippingAddress = shippingAddress
        self.note = note
        self.paymentReference = paymentReference
        self.carrier = carrier
        self.trackingNumber = trackingNumber
        self.cancelReason = cancelReason
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.paidAt = paidAt
        self.shippedAt = shippedAt
        self.deliveredAt = deliveredAt
        self.cancelledAt = cancelledAt
    }

    /// Checks every rule of a new order and lists every offending field.
    /// Whether the customer exists is the application's question (it needs I/O).
    public static func validate(_ command: PlaceOrder) -> [FieldError] {
        var errors = FieldErrors()
        if command.customerID.isEmpty || command.customerID.utf8.count > 100 || command.customerID.unicodeScalars.contains("\u{0}") {
            errors.add("customer_id", "must be a customer id")
        }
        Rules.currency(command.currency, field: "currency", into: &errors)
        if command.items.isEmpty || command.items.count > maxItems {
            errors.add("items", "must contain between 1 and \(maxItems) items")
        }
        var seenSKUs: Set<String> = []
        for (i, item) in command.items.enumerated() {
            let path = "items[\(i)]"
            if !isValidSKU(item.sku) {
                errors.add("\(path).sku", "must be 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'")
            } else if !seenSKUs.insert(item.sku).inserted {
                errors.add("\(path).sku", "must be unique within the order")
            }
            Rules.text(item.name, field: "\(path).name", max: 200, into: &errors)
            if !quantityRange.contains(item.quantity) {
                errors.add("\(path).quantity", "must be between \(quantityRange.lowerBound) and \(quantityRange.upperBound)")
            }
            if let price = Money(decimal: item.unitPrice) {
                if price <= .zero || price > maxUnitPrice {
                    errors.add("\(path).unit_price", "must be greater than 0 and at most 1000000")
                }
            } else {
                errors.add("\(path).unit_price", "must be a decimal string with at most 2 fraction digits, such as \"19.99\"")
            }
        }
        let address = command.shippingAddress
        Rules.text(address.line1, field: "shipping_address.line1", max: 200, into: &errors)
        Rules.optionalText(address.line2, field: "shipping_address.line2", max: 200, into: &errors)
        Rules.text(address.city, field: "shipping_address.city", max: 100, into: &errors)
        Rules.text(address.postalCode, field: "shipping_address.postal_code", max: 20, into: &errors)
        Rules.country(address.country, field: "shipping_address.country", into: &errors)
        Rules.optionalText(command.note, field: "note", max: 2000, into: &errors)
        return errors.errors
    }

    public static func place(id: String, _ command: PlaceOrder, now: Timestamp) throws(DomainError) -> (Order, DomainEvent) {
        let errors = validate(command)
        guard errors.isEmpty else { throw .validation(errors) }
        let lines = command.items.map {
            OrderLine(sku: $0.sku, name: $0.name, quantity: $0.quantity, unitPrice: Money(decimal: $0.unitPrice)!)
        }
        let order = Order(
            id: id, version: 1, status: .pending, customerID: command.customerID, currency: command.currency, items: lines,
            shippingAddress: command.shippingAddress, note: command.note, paymentReference: nil, carrier: nil,
            trackingNumber: nil, cancelReason: nil, createdAt: now, updatedAt: now, paidAt: nil, shippedAt: nil,
            deliveredAt: nil, cancelledAt: nil
        )
        return (order, order.event(.orderPlaced))
    }

    /// `pending → paid`; the amount must equal the total exactly.
    public mutating func pay(reference: String, amount: String, now: Timestamp) throws(DomainError) -> DomainEvent {
        try requireStatus(in: [.pending], command: "pay")
        var errors = FieldErrors()
        Rules.text(reference, field: "payment_reference", max: 200, into: &errors)
        if let money = Money(decimal: amount) {
            if money != total { errors.add("amount", "must equal the order total \(total)") }
        } else {
            errors.add("amount", "must be a decimal string with at most 2 fraction digits, such as \"19.99\"")
        }
        try errors.throwIfAny()
        status = .paid
        paymentReference = reference
        paidAt = advance(now)
        return event(.orderPaid)
    }

    /// `paid → shipped`.
    public mutating func ship(carrier: String, trackingNumber: String, now: Timestamp) throws(DomainError) -> DomainEvent {
        try requireStatus(in: [.paid], command: "ship")
        var errors = FieldErrors()
        Rules.text(carrier, field: "carrier", max: 100, into: &errors)
        Rules.text(trackingNumber, field: "tracking_number", max: 100, into: &errors)
        try errors.throwIfAny()
        status = .shipped
        self.carrier = carrier
        self.trackingNumber = trackingNumber
        shippedAt = advance(now)
        return event(.orderShipped)
    }

    /// `shipped → delivered`.
    public mutating func deliver(now: Timestamp) throws(DomainError) -> DomainEvent {
        try requireStatus(in: [.shipped], command: "deliver")
        status = .delivered
        deliveredAt = advance(now)
        return event(.orderDelivered)
    }

    /// `pending | paid → cancelled`.
    public mutating func cancel(reason: String, now: Timestamp) throws(DomainError) -> DomainEvent {
        try requireStatus(in: [.pending, .paid], command: "cancel")
        var errors = FieldErrors()
        Rules.text(reason, field: "reason", max: 500, into: &errors)
        try errors.throwIfAny()
        status = .cancelled
        cancelReason = reason
        cancelledAt = advance(now)
        return event(.orderCancelled)
    }

    static func isValidSKU(_ sku: String) -> Bool {
        let utf8 = sku.utf8
        return (1...64).contains(utf8.count) && utf8.allSatisfy {
            (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0)
                || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-")
        }
    }

    private func requireStatus(in allowed: Set<OrderStatus>, command: String) throws(DomainError) {
        guard allowed.contains(status) else { throw .invalidTransition(command: command, current: status) }
    }

    /// Bumps version and `updated_at`; time never runs backwards on one order,
    /// even if clocks of two API instances disagree.
    private mutating func advance(_ now: Timestamp) -> Timestamp {
        version += 1
        updatedAt = max(now, updatedAt)
        return updatedAt
    }

    private func event(_ kind: DomainEvent.Kind) -> DomainEvent {
        DomainEvent(kind: kind, aggregateType: .order, aggregateID: id, aggregateVersion: version, occurredAt: updatedAt)
    }
}
