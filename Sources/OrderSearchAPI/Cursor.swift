import JSONSupport

/// The opaque `next_cursor`: the `search_after` values of the last hit and
/// the fingerprint of the query they belong to, with a checksum. Decoding is
/// strict: wrong query, wrong shape, wrong types or a bad checksum → nil.
struct Cursor {
    let fingerprint: String
    let searchAfter: [JSONValue]

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    var encoded: String {
        let payload = JSONValue.object(JSONObject([("f", .string(fingerprint)), ("s", .array(searchAfter))])).serialized
        let checksum = Hash128.hex("cursor-v1\u{1}" + payload).prefix(16)
        return Self.base64URL(Array(("v1." + checksum + "." + payload).utf8))
    }

    /// - Parameter sortFields: the fields of the current sort, to type-check the values.
    init?(encoded: String, fingerprint expected: String, sortFields: [String]) {
        guard encoded.utf8.count <= 4096, let bytes = Self.decodeBase64URL(encoded),
              let text = String(validating: bytes, as: UTF8.self), text.hasPrefix("v1.")
        else { return nil }
        let rest = text.dropFirst(3)
        guard let dot = rest.firstIndex(of: ".") else { return nil }
        let checksum = rest[..<dot]
        let payload = String(rest[rest.index(after: dot)...])
        guard checksum == Hash128.hex("cursor-v1\u{1}" + payload).prefix(16),
              case .object(let object)? = try? JSONParser.parse(payload), object.count == 2,
              object["f"]?.stringValue == expected, let values = object["s"]?.arrayValue, values.count == sortFields.count
        else { return nil }
        for (field, value) in zip(sortFields, values) {
            switch (field, value) {
            case ("order_id", .string): continue
            case ("_score", .number), ("total", .number): continue
            case ("created_at", .number(let n)) where Int64(n) != nil: continue
            default: return nil
            }
        }
        fingerprint = expected
        searchAfter = values
    }

    init(fingerprint: String, searchAfter: [JSONValue]) {
        self.fingerprint = fingerprint
        self.searchAfter = searchAfter
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let chunk = bytes[i..<min(i + 3, bytes.count)]
            var n: UInt32 = 0
            for (j, b) in chunk.enumerated() { n |= UInt32(b) << (16 - 8 * j) }
            for j in 0...chunk.count { out.append(alphabet[Int((n >> (18 - 6 * j)) & 63)]) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decodeBase64URL(_ text: String) -> [UInt8]? {
        var lookup = [Int8](repeating: -1, count: 256)
        for (i, c) in alphabet.enumerated() { lookup[Int(c)] = Int8(i) }
        var bytes: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for c in text.utf8 {
            let v = lookup[Int(c)]
            guard v >= 0 else { return nil }
            buffer = buffer << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                bytes.append(UInt8((buffer >> UInt32(bits)) & 0xFF))
            }
        }
        // Canonical encodings only.
        guard base64URL(bytes) == text else { return nil }
        return bytes
    }
}
