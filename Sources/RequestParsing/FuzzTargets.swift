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
        _ = parameters.canonicalParts
    }

    static let signer = try! TokenSigner(key: "fuzzing-key-fuzzing-key-fuzzing-key-0123")

    /// Consistency tokens and cursors: nothing unsigned decodes, anything signed round-trips.
    public static func tokens(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        if !text.contains(".") {
            precondition(signer.verify(text, for: .consistency) == nil && signer.verify(text, for: .cursor) == nil, "an unsigned token verified")
        }
        if let token = ConsistencyToken(payload: bytes) { precondition(ConsistencyToken(payload: token.payload) == token) }
        precondition(signer.verify(signer.sign(bytes, for: .cursor), for: .cursor) == bytes)
        _ = Cursor(encoded: text, signer: signer, fingerprint: "f", sortFields: ["created_at", "order_id"])
    }
}
