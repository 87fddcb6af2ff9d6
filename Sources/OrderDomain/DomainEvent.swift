/// A fact the write model recorded. The outbox stores one per committed change.
public struct DomainEvent: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case orderPlaced = "OrderPlaced"
        case orderPaid = "OrderPaid"
        case orderShipped = "OrderShipped"
        case orderDelivered = "OrderDelivered"
        case orderCancelled = "OrderCancelled"
        case customerRegistered = "CustomerRegistered"
        case customerChanged = "CustomerChanged"
    }

    public enum AggregateType: String, Sendable {
        case order
        case customer
    }

    public let kind: Kind
    public let aggregateType: AggregateType
    public let aggregateID: String
    /// The aggregate's version after the change.
    public let aggregateVersion: Int
    public let occurredAt: Timestamp

    public init(kind: Kind, aggregateType: AggregateType, aggregateID: String, aggregateVersion: Int, occurredAt: Timestamp) {
        self.kind = kind
        self.aggregateType = aggregateType
        self.aggregateID = aggregateID
        self.aggregateVersion = aggregateVersion
        self.occurredAt = occurredAt
    }
}
