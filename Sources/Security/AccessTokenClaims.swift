import Foundation
import JWTKit

/// The claims of a bearer token (the contract's "Claims"). jwt-kit decodes
/// them and checks the signature; `verify(using:)` checks the times.
public struct AccessTokenClaims: JWTPayload, Equatable {
    /// Clock skew tolerated between the identity provider and this process.
    public static let leeway: TimeInterval = 60

    public var sub: SubjectClaim?
    /// Raw role names: unknown ones are ignored rather than failing the token,
    /// since identity providers add roles of their own.
    public var roles: [String]?
    public var customer_id: String?
    public var exp: ExpirationClaim?
    public var nbf: NotBeforeClaim?
    public var iat: IssuedAtClaim?
    public var iss: IssuerClaim?
    public var aud: AudienceClaim?

    public init(subject: String, roles: [Role], customerID: String?, expires: Date, issuer: String? = nil, audience: String? = nil,
                issuedAt: Date = Date()) {
        // NumericDate in whole seconds: some consumers refuse fractions.
        func seconds(_ date: Date) -> Date { Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down)) }
        sub = SubjectClaim(value: subject)
        self.roles = roles.map(\.rawValue)
        customer_id = customerID
        exp = ExpirationClaim(value: seconds(expires))
        iat = IssuedAtClaim(value: seconds(issuedAt))
        iss = issuer.map { IssuerClaim(value: $0) }
        aud = audience.map { AudienceClaim(value: [$0]) }
    }

    public func verify(using algorithm: some JWTAlgorithm) async throws {
        guard let exp else { throw AuthenticationError.missingClaim("exp") }
        try exp.verifyNotExpired(currentDate: Date().addingTimeInterval(-Self.leeway))
        try nbf?.verifyNotBefore(currentDate: Date().addingTimeInterval(Self.leeway))
    }
}
