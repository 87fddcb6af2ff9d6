import JSONSupport
import OrderDomain

/// The public JSON shape of the aggregates (the contract's "An order reads …").
/// The outbox payload uses the same shape, so an event is a full snapshot.
extension Customer {
    public func writeJSON(into w: inout JSONWriter) {
        w.raw("{\"id\":"); w.string(id)
        w.raw(",\"version\":"); w.int(version)
        w.raw(",\"name\":"); w.string(name)
        w.raw(",\"email\":"); w.string(email)
        w.raw(",\"country\":"); w.string(country)
        w.raw(",\"created_at\":"); w.string(createdAt.rfc3339)
        w.raw(",\"updated_at\":"); w.string(updatedAt.rfc3339)
        w.raw("}")
    }

    public var json: String {
        var w = JSONWriter()
        writeJSON(into: &w)
        return w.string
    }
}

extension Order {
    public func writeJSON(into w: inout JSONWriter) {
        w.raw("{\"id\":"); w.string(id)
        w.raw(",\"version\":"); w.int(version)
        w.raw(",\"status\":"); w.string(status.rawValue)
        w.raw(",\"customer_id\":"); w.string(customerID)
        w.raw(",\"currency\":"); w.string(currency)
        w.raw(",\"total\":"); w.string(total.description)
        w.raw(",\"items\":[")
        for (i, item) in items.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{\"sku\":"); w.string(item.sku)
            w.raw(",\"name\":"); w.string(item.name)
            w.raw(",\"quantity\":"); w.int(item.quantity)
            w.raw(",\"unit_price\":"); w.string(item.unitPrice.description)
            w.raw(",\"line_total\":"); w.string(item.lineTotal.description)
            w.raw("}")
        }
        w.raw("],\"shipping_address\":{\"line1\":"); w.string(shippingAddress.line1)
        w.raw(",\"line2\":"); w.optionalString(shippingAddress.line2)
        w.raw(",\"city\":"); w.string(shippingAddress.city)
        w.raw(",\"postal_code\":"); w.string(shippingAddress.postalCode)
        w.raw(",\"country\":"); w.string(shippingAddress.country)
        w.raw("},\"note\":"); w.optionalString(note)
        w.raw(",\"payment_reference\":"); w.optionalString(paymentReference)
        w.raw(",\"carrier\":"); w.optionalString(carrier)
        w.raw(",\"tracking_number\":"); w.optionalString(trackingNumber)
        w.raw(",\"cancel_reason\":"); w.optionalString(cancelReason)
        w.raw(",\"created_at\":"); w.string(createdAt.rfc3339)
        w.raw(",\"updated_at\":"); w.string(updatedAt.rfc3339)
        w.raw(",\"paid_at\":"); w.optionalString(paidAt?.rfc3339)
        w.raw(",\"shipped_at\":"); w.optionalString(shippedAt?.rfc3339)
        w.raw(",\"delivered_at\":"); w.optionalString(deliveredAt?.rfc3339)
        w.raw(",\"cancelled_at\":"); w.optionalString(cancelledAt?.rfc3339)
        w.raw("}")
    }

    public var json: String {
        var w = JSONWriter(capacity: 1024)
        writeJSON(into: &w)
        return w.string
    }
}
