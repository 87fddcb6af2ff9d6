import JSONSupport
import OrderDomain
import TokenSigning

/// What libFuzzer drives (`order-fuzz`, `scripts/fuzz`) and the unit tests
/// replay from the saved corpus: each takes arbitrary bytes and traps
/// (`precondition`) when an invariant of bounded, well-formed output breaks.
public enum FuzzTargets {
    public static let all: [String: @Sendable ([UInt8]) -> Void] = [
        "json": json, "order-body": orderBody, "search-parameters": searchParameters, "tokens": tokens,
    ]

    /// The JSON parser: accepted text re-serializes to text that parses to the same value.
    public static func json(_ bytes: [UInt8]) {
        guard let value = try? JSONParser.parse(bytes) else { return }
        let again = try? JSONParser.parse(value.serializedBytes)
        precondition(again == value, "JSON did not survive a round trip")
    }

    /// Command bodies: any JSON gives a command or at most the listed-errors limit of field errors.
    public static func orderBody(_ bytes: [UInt8]) {
        guard bytes.count <= 1 << 20, case .object(let object)? = try? JSONParser.parse(bytes) else { return }
        let (_, orderErrors) = CommandBodies.placeOrder(object)
        let (_, customerErrors) = CommandBodies.newCustomer(object)
        let (_, changeErrors) = CommandBodies.customerChange(object)
        for errors in [orderErrors, customerErrors, changeErrors] {
            precondition(errors.count <= FieldError.maximumListed, "too many field errors listed")
        }
    }

    /// Search parameters: any query string is accepted within the limits or refused by name.
    public static func searchParameters(_ bytes: [UInt8]) {
        guard let parameters = try? SearchParameters(query: String(decoding: bytes, as: UTF8.self)) else { return }
        for values in [parameters.statuses, parameters.currencies, parameters.countries, parameters.customerIDs, parameters.skus] {
            precondition(values.count <= SearchParameters.maximumFilterValues && Set(values).count == values.count)
        }
        precondition((1...100).contains(parameters.size) && (parameters.q?.unicodeScalars.count ?? 0) <= SearchParameters.maximumQueryLength)
        // What a cursor carries parses back to the same query.
        let canonical = parameters.canonicalQuery
        precondition((try? SearchParameters(query: canonical))?.canonicalQuery == canonical, "a canonical query did not round-trip")
    }

    static let signer = try! TokenSigner(key: "fuzzing-key-fuzzing-key-fuzzing-key-0123")

    /// Consistency tokens and cursors: a token verifies only as exactly what the
    /// key signed for that purpose; signed payloads round-trip; decoders never crash.
    public static func tokens(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        for purpose in [TokenSigner.Purpose.consistency, .cursor] {
            if let payload = signer.verify(text, for: purpose) {
                precondition(signer.sign(payload, for: purpose) == text, "a token verified that the key did not sign")
            }
        }
        if let token = ConsistencyToken(payload: bytes) { precondition(ConsistencyToken(payload: token.payload) == token) }
        let signed = signer.sign(bytes, for: .cursor)
        precondition(signer.verify(signed, for: .cursor) == bytes, "a signed payload did not round-trip")
        precondition(signer.verify(signed, for: .consistency) == nil, "a cursor passed as a consistency token")
        precondition(signer.verify(signed + "A", for: .cursor) == nil, "an altered token verified")
        _ = Cursor(encoded: text, signer: signer)?.fits(sortFields: ["created_at", "order_id"])
    }
}
