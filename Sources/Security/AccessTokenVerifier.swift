import Foundation
import JWTKit

/// Verifies bearer tokens by itself (no network or database call): HS256 with
/// `AUTH_JWT_SECRET` whatever the token's `kid` (none, `order-admin token`'s, or an identity
/// provider's own), RS256/ES256 with the JWKS key named by the token's `kid`.
/// Signatures, base64url and JSON are jwt-kit's; this type adds the policy:
/// the token's `alg` must be its key's algorithm, `exp` is required, `iss`/`aud`
/// must match when configured, `sub` is required, a customer needs `customer_id`.
public final class AccessTokenVerifier: Sendable {
    /// Longer credentials are refused before any parsing (bounded work per request).
    public static let maximumTokenBytes = 8192

    /// The JWKS keys by `kid`.
    private let keys: JWTKeyCollection
    /// `AUTH_JWT_SECRET` as the only (default) key, for HS256 tokens whose `kid` names no JWKS key:
    /// jwt-kit answers any `kid` it does not hold with the default key, so one collection made at
    /// start serves every `kid` (none, `order-admin token`'s, an identity provider's own).
    private let secretKeys: JWTKeyCollection?
    /// The `kid`s of the JWKS: jwt-kit answers an unknown `kid` with its default key, so whether a
    /// `kid` is the JWKS's is decided here.
    private let jwksKeyIDs: Set<String>
    private let issuer: String?
    private let audience: String?
    private let verified = VerifiedTokenCache()

    public init(configuration: AuthConfiguration) async throws(AuthConfiguration.Invalid) {
        // An RS256/ES256 token without `kid` is tried against the first JWKS key, whose
        // algorithm then has to match (HS256 ones go to the secret, `keys(for:)`).
        let keys = JWTKeyCollection()
        var jwksKeyIDs: Set<String> = []
        if let jwks = try configuration.jwksJSON() {
            // Every key names its `alg`: for a key without one, jwt-kit keeps the algorithm of the first
            // token that names the key, so one forged token could lock out every real one.
            let parsed = try? JSONDecoder().decode(JWKS.self, from: Data(jwks.utf8))
            guard let parsed, parsed.keys.allSatisfy({ $0.keyIdentifier != nil && $0.algorithm != nil }),
                  (try? await keys.add(jwksJSON: jwks)) != nil else {
                throw AuthConfiguration.Invalid(description: "AUTH_JWKS_FILE is not a JWKS with a kid and an alg on every RS256/ES256 key")
            }
            jwksKeyIDs = Set(parsed.keys.compactMap { $0.keyIdentifier?.string })
        }
        self.jwksKeyIDs = jwksKeyIDs
        self.keys = keys
        if let secret = try configuration.secretBytes() {
            let secretKeys = JWTKeyCollection()
            await secretKeys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
            self.secretKeys = secretKeys
        } else {
            secretKeys = nil
        }
        issuer = configuration.issuer
        audience = configuration.audience
    }

    /// The `kid` of tokens minted by `order-admin token`.
    public static let hmacKeyID = "order-admin-hs256"

    /// The principal of a bearer token, or why there is none.
    public func principal(token: String) async throws(AuthenticationError) -> Principal {
        guard !token.isEmpty, token.utf8.count <= Self.maximumTokenBytes else { throw .invalidToken }
        let key = VerifiedTokenCache.key(token)
        if let principal = verified.principal(for: key) { return principal }
        let claims: AccessTokenClaims
        do {
            let header = try DefaultJWTParser().parse(Array(token.utf8), as: AccessTokenClaims.self).header
            let keys = keys(for: header)
            // The cheap header check first: a token whose `alg` is not its key's costs no signature check.
            try await requireMatchingAlgorithm(header, in: keys)
            claims = try await keys.verify(token, as: AccessTokenClaims.self)
        } catch let error as AuthenticationError {
            throw error
        } catch let error as JWTError where error.errorType == .claimVerificationFailure {
            throw .expired
        } catch {
            throw .invalidToken
        }
        let principal = try principal(from: claims)
        if let expires = claims.exp?.value { verified.store(principal, for: key, expires: expires) }
        return principal
    }

    /// The keys that verify a token: the secret for an HS256 token whose `kid` is not a JWKS key's
    /// (the contract's HS256 has no `kid` rule); otherwise the JWKS's (jwt-kit picks by `kid`,
    /// falling back to its first key). A `kid` of the JWKS keeps its key, so an HS256 header cannot
    /// make an RS256 key an HMAC secret.
    private func keys(for header: JWTHeader) -> JWTKeyCollection {
        guard header.alg == "HS256", let secretKeys, !(header.kid.map(jwksKeyIDs.contains) ?? false) else { return keys }
        return secretKeys
    }

    /// Algorithm confusion: whatever the header says, the key decides the
    /// algorithm (jwt-kit picks the key by `kid`); a header that claims another one is refused.
    private func requireMatchingAlgorithm(_ header: JWTHeader, in keys: JWTKeyCollection) async throws {
        let key = try await keys.getKey(for: header.kid.map { JWKIdentifier(string: $0) }, alg: header.alg)
        guard let alg = header.alg, alg == key.name, alg != "none" else { throw AuthenticationError.invalidToken }
    }

    func principal(from claims: AccessTokenClaims) throws(AuthenticationError) -> Principal {
        guard let subject = claims.sub?.value, !subject.isEmpty else { throw .missingClaim("sub") }
        if let issuer, claims.iss?.value != issuer { throw .wrongIssuer }
        if let audience, !(claims.aud?.value.contains(audience) ?? false) { throw .wrongAudience }
        let roles = Set((claims.roles ?? []).compactMap(Role.init(rawValue:)))
        var customerID: String?
        if roles.contains(.customer) {
            guard let id = claims.customer_id, !id.isEmpty else { throw .customerWithoutID }
            customerID = id
        }
        return Principal(subject: subject, roles: roles, customerID: customerID)
    }
}

/// Mints HS256 access tokens with `AUTH_JWT_SECRET` (`order-admin token`, tests, benchmarks).
public struct AccessTokenMinter: Sendable {
    private let keys: JWTKeyCollection

    public init(secret: String) async throws(AuthConfiguration.Invalid) {
        let bytes = try AuthConfiguration(jwtSecret: secret).secretBytes() ?? []
        keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: bytes), digestAlgorithm: .sha256, kid: JWKIdentifier(string: AccessTokenVerifier.hmacKeyID))
    }

    public func mint(_ claims: AccessTokenClaims) async throws -> String {
        try await keys.sign(claims, kid: JWKIdentifier(string: AccessTokenVerifier.hmacKeyID))
    }

    public func mint(subject: String, roles: [Role], customerID: String? = nil, ttl: Duration = .seconds(3600),
                     issuer: String? = nil, audience: String? = nil) async throws -> String {
        let expires = Date().addingTimeInterval(TimeInterval(ttl.components.seconds))
        return try await mint(AccessTokenClaims(subject: subject, roles: roles, customerID: customerID, expires: expires,
                                                issuer: issuer, audience: audience))
    }
}
