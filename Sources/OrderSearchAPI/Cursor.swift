import JSONSupport

/// The opaque `next_cursor`: the `search_after` values of the last hit and
/// the fingerprint of the query they belong to, with a checksum. Decoding is
/// strict: wrong query, wrong shape, wrong types or a bad checksum → nil.
struct Cursor {
    let fingerprint: String
    let searchAfter: [JSONValue]

    var encoded: String {
        let payload = JSONValue.object(JSONObject([("f", .string(fingerprint)), ("s", .array(searchAfter))])).serialized
        let checksum = Hash128.hex("cursor-v1\u{1}" + payload).prefix(16)
        return Base64URL.encode(Array(("v1." + checksum + "." + payload).utf8))
    }

    /// - Parameter sortFields: the fields of the current sort, to type-check the values.
    init?(encoded: String, fingerprint expected: String, sortFields: [String]) {
        guard encoded.utf8.count <= 4096, let bytes = Base64URL.decode(encoded),
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
}
