import JSONSupport

/// "The read side has applied aggregate X at version ≥ N": what a write
/// returns and a search can check against Elasticsearch alone (every order
/// document carries its order's and its customer's version).
public struct ConsistencyToken: Sendable, Equatable {
    public let aggregateType: DomainEvent.AggregateType
    public let aggregateID: String
    public let version: Int

    public init(aggregateType: DomainEvent.AggregateType, aggregateID: String, version: Int) {
        self.aggregateType = aggregateType
        self.aggregateID = aggregateID
        self.version = version
    }

    /// Opaque to clients: base64url of `v1|o|<id>|<version>`.
    public var encoded: String {
        let kind = aggregateType == .order ? "o" : "c"
        return Base64URL.encode(Array("v1|\(kind)|\(aggregateID)|\(version)".utf8))
    }

    /// Strict decoding: anything but a token this service issued is nil.
    public init?(encoded: String) {
        guard !encoded.isEmpty, encoded.utf8.count <= 400 else { return nil }
        guard let bytes = Base64URL.decode(encoded) else { return nil }
        guard let text = String(validating: bytes, as: UTF8.self) else { return nil }
        let parts = text.split(separator: "|", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "v1", let version = Int(parts[3]), version >= 1, !parts[2].isEmpty else { return nil }
        switch parts[1] {
        case "o": aggregateType = .order
        case "c": aggregateType = .customer
        default: return nil
        }
        aggregateID = String(parts[2])
        self.version = version
    }
}
