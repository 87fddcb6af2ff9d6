/// Why a request carries no usable principal. The description never contains
/// the token: these end up in logs.
public enum AuthenticationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No `Authorization: Bearer …` at all (RFC 6750: no `error` attribute).
    case missingToken
    /// Not a well-formed bearer credential, bad signature, or unusable key.
    case invalidToken
    case expired
    case missingClaim(String)
    case wrongIssuer
    case wrongAudience
    /// A `customer` token without `customer_id`.
    case customerWithoutID

    public var description: String {
        switch self {
        case .missingToken: "no bearer token"
        case .invalidToken: "the token is malformed or not signed by a trusted key"
        case .expired: "the token has expired or is not valid yet"
        case .missingClaim(let name): "the token has no \(name) claim"
        case .wrongIssuer: "the token was issued by another issuer"
        case .wrongAudience: "the token is meant for another audience"
        case .customerWithoutID: "a customer token must carry customer_id"
        }
    }
}
