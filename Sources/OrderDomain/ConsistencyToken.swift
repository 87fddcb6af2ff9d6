/// "The read side has applied aggregate X at version ≥ N": what a write
/// returns and a search can check against Elasticsearch alone (every order
/// document carries its order's and its customer's version). The token also
/// names the customer the write belongs to, so a customer's token waits only
/// for that customer's own writes. Signing is the APIs' job (`TokenSigner`);
/// this is only the payload.
public struct ConsistencyToken: Sendable, Equatable {
    public let aggregateType: DomainEvent.AggregateType
    public let aggregateID: String
    public let version: Int
    /// The customer that owns the aggregate (the customer itself, or the order's customer).
    public let customerID: String

    public init(aggregateType: DomainEvent.AggregateType, aggregateID: String, version: Int, customerID: String) {
        self.aggregateType = aggregateType
        self.aggregateID = aggregateID
        self.version = version
        self.customerID = customerID
    }

    /// `v2|o|<id>|<version>|<customer id>` (ids are server-generated and never contain `|`).
    public var payload: [UInt8] {
        let kind = aggregateType == .order ? "o" : "c"
        return Array("v2|\(kind)|\(aggregateID)|\(version)|\(customerID)".utf8)
    }

    /// Strict decoding: anything but a payload this service wrote is nil.
    public init?(payload: [UInt8]) {
        guard payload.count <= 400, let text = String(validating: payload, as: UTF8.self) else { return nil }
        let parts = text.split(separator: "|", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0] == "v2", let version = Int(parts[3]), version >= 1, !parts[2].isEmpty, !parts[4].isEmpty
        else { return nil }
        switch parts[1] {
        case "o": aggregateType = .order
        case "c": aggregateType = .customer
        default: return nil
        }
        aggregateID = String(parts[2])
        self.version = version
        customerID = String(parts[4])
    }
}
