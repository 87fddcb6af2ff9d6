import JSONSupport
import TokenSigning
import IndexSchema

/// The opaque `next_cursor`: the `search_after` values of the last hit and
/// the fingerprint of the query they belong to, signed with `SIGNING_KEY`
/// (`TokenSigner`, purpose `.cursor`). Decoding is strict: a bad signature,
/// another query, wrong shape or wrong types → nil, before any Elasticsearch call.
public struct Cursor: Sendable {
    public let fingerprint: String
    public let searchAfter: [JSONValue]

    public init(fingerprint: String, searchAfter: [JSONValue]) {
        self.fingerprint = fingerprint
        self.searchAfter = searchAfter
    }

    public func encoded(with signer: TokenSigner) -> String {
        let payload = JSONValue.object(JSONObject([("f", .string(fingerprint)), ("s", .array(searchAfter))])).serializedBytes
        return signer.sign(payload, for: .cursor)
    }

    /// - Parameter sortFields: the fields of the current sort, to type-check the values.
    public init?(encoded: String, signer: TokenSigner, fingerprint expected: String, sortFields: [String]) {
        guard let payload = signer.verify(encoded, for: .cursor),
              case .object(let object)? = try? JSONParser.parse(payload), object.count == 2,
              object["f"]?.stringValue == expected, let values = object["s"]?.arrayValue, values.count == sortFields.count
        else { return nil }
        for (field, value) in zip(sortFields, values) {
            switch (field, value) {
            case (IndexField.orderID.path, .string): continue
            case ("_score", .number), (IndexField.total.path, .number): continue
            case (IndexField.createdAt.path, .number(let n)) where Int64(n) != nil: continue
            default: return nil
            }
        }
        fingerprint = expected
        searchAfter = values
    }
}
