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

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Opaque to clients: base64url of `v1|o|<id>|<version>`.
    public var encoded: String {
        let kind = aggregateType == .order ? "o" : "c"
        let plain = Array("v1|\(kind)|\(aggregateID)|\(version)".utf8)
        var out: [UInt8] = []
        var i = 0
        while i < plain.count {
            let chunk = plain[i..<min(i + 3, plain.count)]
            var n: UInt32 = 0
            for (j, b) in chunk.enumerated() { n |= UInt32(b) << (16 - 8 * j) }
            let chars = chunk.count + 1
            for j in 0..<chars { out.append(Self.alphabet[Int((n >> (18 - 6 * j)) & 63)]) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Strict decoding: anything but a token this service issued is nil.
    public init?(encoded: String) {
        guard !encoded.isEmpty, encoded.utf8.count <= 400 else { return nil }
        var lookup = [Int8](repeating: -1, count: 256)
        for (i, c) in Self.alphabet.enumerated() { lookup[Int(c)] = Int8(i) }
        var bytes: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for c in encoded.utf8 {
            let v = lookup[Int(c)]
            guard v >= 0 else { return nil }
            buffer = buffer << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                bytes.append(UInt8((buffer >> UInt32(bits)) & 0xFF))
            }
        }
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
        // Canonical form only, so one write has exactly one token.
        guard self.encoded == encoded else { return nil }
    }
}
