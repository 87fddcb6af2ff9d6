import JSONSupport
import TokenSigning
import IndexSchema

/// The opaque `next_cursor`: the query it continues (the request's parameters as a canonical query
/// string, `SearchParameters.canonicalQuery`, and the customer scope of the principal that asked)
/// and the `search_after` values of the page's last hit, signed with `SIGNING_KEY` (`TokenSigner`,
/// purpose `.cursor`). The contract's cursor carries its query, so `?cursor=…` alone fetches the
/// next page; carrying the query rather than a digest of it costs bytes in proportion to the
/// request's own parameters. Decoding is strict: a bad signature, wrong shape or wrong types → nil,
/// before any Elasticsearch call.
public struct Cursor: Sendable {
    public let query: String
    public let scope: String
    public let searchAfter: [JSONValue]

    public init(query: String, scope: String, searchAfter: [JSONValue]) {
        self.query = query
        self.scope = scope
        self.searchAfter = searchAfter
    }

    public func encoded(with signer: TokenSigner) -> String {
        let payload = JSONValue.object(JSONObject([("q", .string(query)), ("c", .string(scope)), ("s", .array(searchAfter))]))
        return signer.sign(payload.serializedBytes, for: .cursor)
    }

    /// Verifies the signature and the shape; `fits(sortFields:)` checks the values against the sort
    /// of the query the cursor carries.
    public init?(encoded: String, signer: TokenSigner) {
        guard let payload = signer.verify(encoded, for: .cursor),
              case .object(let object)? = try? JSONParser.parse(payload), object.count == 3,
              let query = object["q"]?.stringValue, let scope = object["c"]?.stringValue, let values = object["s"]?.arrayValue
        else { return nil }
        self.init(query: query, scope: scope, searchAfter: values)
    }

    /// Whether the values are one of the right type per field of the sort.
    public func fits(sortFields: [String]) -> Bool {
        guard searchAfter.count == sortFields.count else { return false }
        return zip(sortFields, searchAfter).allSatisfy { field, value in
            switch (field, value) {
            case (IndexField.orderID.path, .string): true
            case ("_score", .number), (IndexField.total.path, .number): true
            case (IndexField.createdAt.path, .number(let n)): Int64(n) != nil
            default: false
            }
        }
    }
}
