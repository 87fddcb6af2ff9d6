import OrderDomain
import Testing

@Suite struct OrderTests {
    let now = Timestamp(millisecondsSinceEpoch: 1_700_000_000_000)
    let address = ShippingAddress(line1: "Main 1", line2: nil, city: "Berlin", postalCode: "10115", country: "DE")

    func command(_ items: [PlaceOrder.Item]) -> PlaceOrder {
        PlaceOrder(customerID: "cus_1", currency: "EUR", items: items, shippingAddress: address, note: nil)
    }

    func placed() throws -> Order {
        try Order.place(id: "ord_1", command([.init(sku: "A", name: "Mug", quantity: 3, unitPrice: "19.99")]), now: now).0
    }

    @Test func placingComputesTotalsAndEmitsEvent() throws {
        let (order, event) = try Order.place(id: "ord_1", command([
            .init(sku: "A", name: "Mug", quantity: 3, unitPrice: "19.99"), .init(sku: "B", name: "Tee", quantity: 2, unitPrice: "0.05"),
        ]), now: now)
        #expect(order.total.description == "60.07")
        #expect(order.status == .pending)
        #expect(order.version == 1)
        #expect(event == DomainEvent(kind: .orderPlaced, aggregateType: .order, aggregateID: "ord_1", aggregateVersion: 1, occurredAt: now))
    }

    @Test func everyRuleIsReportedAtOnce() {
        let errors = Order.validate(PlaceOrder(
            customerID: "", currency: "eur",
            items: [.init(sku: "A", name: "", quantity: 0, unitPrice: "0"), .init(sku: "A", name: "x", quantity: 1001, unitPrice: "1000000.01")],
            shippingAddress: ShippingAddress(line1: "", line2: nil, city: "", postalCode: "", country: "ZZ"), note: nil
        ))
        #expect(Set(errors.map(\.field)) == [
            "customer_id", "currency", "items[0].name", "items[0].quantity", "items[0].unit_price", "items[1].sku", "items[1].quantity",
            "items[1].unit_price", "shipping_address.line1", "shipping_address.city", "shipping_address.postal_code", "shipping_address.country",
        ])
        #expect(Order.validate(command([])).map(\.field) == ["items"])
        let tooMany = (0..<101).map { PlaceOrder.Item(sku: "S\($0)", name: "x", quantity: 1, unitPrice: "1") }
        #expect(Order.validate(command(tooMany)).map(\.field) == ["items"])
        #expect(Order.validate(command([.init(sku: String(repeating: "a", count: 65), name: "x", quantity: 1, unitPrice: "1")])).map(\.field) == ["items[0].sku"])
    }

    @Test func happyPathThroughTheStateMachine() throws {
        var order = try placed()
        #expect(throws: DomainError.validation([FieldError(field: "amount", message: "must equal the order total 59.97")])) {
            try order.pay(reference: "p", amount: "59.98", now: now)
        }
        _ = try order.pay(reference: "p", amount: "59.97", now: now)
        _ = try order.ship(carrier: "DHL", trackingNumber: "T1", now: now)
        let event = try order.deliver(now: now)
        #expect(order.status == .delivered)
        #expect(order.version == 4)
        #expect(event.kind == .orderDelivered)
    }

    @Test(arguments: OrderStatus.allCases)
    func forbiddenTransitionsReportTheCurrentStatus(status: OrderStatus) throws {
        var order = try placed()
        switch status {
        case .pending: break
        case .paid: _ = try order.pay(reference: "p", amount: "59.97", now: now)
        case .shipped:
            _ = try order.pay(reference: "p", amount: "59.97", now: now)
            _ = try order.ship(carrier: "c", trackingNumber: "t", now: now)
        case .delivered:
            _ = try order.pay(reference: "p", amount: "59.97", now: now)
            _ = try order.ship(carrier: "c", trackingNumber: "t", now: now)
            _ = try order.deliver(now: now)
        case .cancelled: _ = try order.cancel(reason: "r", now: now)
        }
        let allowed: [String: Set<OrderStatus>] = ["pay": [.pending], "ship": [.paid], "deliver": [.shipped], "cancel": [.pending, .paid]]
        for (command, from) in allowed where !from.contains(status) {
            var copy = order
            #expect(throws: DomainError.invalidTransition(command: command, current: status)) {
                switch command {
                case "pay": _ = try copy.pay(reference: "p", amount: "59.97", now: now)
                case "ship": _ = try copy.ship(carrier: "c", trackingNumber: "t", now: now)
                case "deliver": _ = try copy.deliver(now: now)
                default: _ = try copy.cancel(reason: "r", now: now)
                }
            }
        }
    }

    @Test func customerChangesBumpVersionOnlyWhenSomethingChanged() throws {
        var (customer, _) = try Customer.register(id: "c", name: "Alice", email: "a@example.com", country: "DE", now: now)
        #expect(try customer.change(name: "Alice", email: nil, country: nil, now: now) == nil)
        #expect(customer.version == 1)
        let event = try customer.change(name: "Alicia", email: nil, country: "FR", now: now)
        #expect(event?.kind == .customerChanged)
        #expect(customer.version == 2)
        #expect(throws: DomainError.self) { try customer.change(name: nil, email: "nope", country: nil, now: now) }
    }

    /// The e-mail rule the OpenAPI pattern states: a local part, and a domain of two or more non-empty labels.
    @Test(arguments: [("a@example.com", true), ("li@例子.中国", true), ("a@b..c", false), ("a@b..c.de", false), ("a@.b.c", false),
                      ("a@b.c.", false), ("a@bc", false), ("@b.c", false), ("a b@c.de", false)])
    func emailAddresses(email: String, valid: Bool) {
        let registered = try? Customer.register(id: "c", name: "Alice", email: email, country: "DE", now: now)
        #expect((registered != nil) == valid, "\(email)")
    }
}
