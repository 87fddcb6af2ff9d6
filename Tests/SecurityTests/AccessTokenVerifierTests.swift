import Crypto
import CryptoExtras
import Foundation
import JWTKit
import Security
import Testing

/// Token verification with no server: every way a bearer token can be wrong.
@Suite struct AccessTokenVerifierTests {
    static let secret = String(repeating: "s3cret-", count: 6)
    static let otherSecret = String(repeating: "other-", count: 6)

    static func claims(sub: String? = "user-1", roles: [Role] = [.staff], customerID: String? = nil, expires: Date = Date() + 600,
                       notBefore: Date? = nil, issuer: String? = nil, audience: String? = nil) -> AccessTokenClaims {
        var claims = AccessTokenClaims(subject: sub ?? "", roles: roles, customerID: customerID, expires: expires, issuer: issuer,
                                       audience: audience)
        if sub == nil { claims.sub = nil }
        claims.nbf = notBefore.map { NotBeforeClaim(value: $0) }
        return claims
    }

    static func hs256(_ claims: AccessTokenClaims, secret: String = secret) async throws -> String {
        try await AccessTokenMinter(secret: secret).mint(claims)
    }

    static func verifier(_ configuration: AuthConfiguration = AuthConfiguration(jwtSecret: secret)) async throws -> AccessTokenVerifier {
        try await AccessTokenVerifier(configuration: configuration)
    }

    @Test func validTokenGivesItsPrincipal() async throws {
        let token = try await Self.hs256(Self.claims(roles: [.customer], customerID: "cus_1"))
        let principal = try await Self.verifier().principal(token: token)
        #expect(principal == Principal(subject: "user-1", roles: [.customer], customerID: "cus_1"))
    }

    @Test func unknownRolesGrantNothing() async throws {
        var claims = Self.claims(roles: [])
        claims.roles = ["admin", "superuser", "metrics"]
        let principal = try await Self.verifier().principal(token: try await Self.hs256(claims))
        #expect(principal.roles == [.metrics])
    }

    @Test func timesAreCheckedWithSixtySecondsLeeway() async throws {
        let verifier = try await Self.verifier()
        await #expect(throws: AuthenticationError.expired) {
            try await verifier.principal(token: try await Self.hs256(Self.claims(expires: Date() - 120)))
        }
        // Expired 30 s ago: within the leeway.
        _ = try await verifier.principal(token: try await Self.hs256(Self.claims(expires: Date() - 30)))
        await #expect(throws: AuthenticationError.expired) {
            try await verifier.principal(token: try await Self.hs256(Self.claims(notBefore: Date() + 300)))
        }
        _ = try await verifier.principal(token: try await Self.hs256(Self.claims(notBefore: Date() + 30)))
    }

    @Test func expIsRequired() async throws {
        var claims = Self.claims()
        claims.exp = nil
        await #expect(throws: AuthenticationError.missingClaim("exp")) {
            try await Self.verifier().principal(token: try await Self.hs256(claims))
        }
    }

    @Test func subIsRequiredAndCustomersNeedTheirID() async throws {
        let verifier = try await Self.verifier()
        await #expect(throws: AuthenticationError.missingClaim("sub")) {
            try await verifier.principal(token: try await Self.hs256(Self.claims(sub: nil)))
        }
        await #expect(throws: AuthenticationError.customerWithoutID) {
            try await verifier.principal(token: try await Self.hs256(Self.claims(roles: [.customer])))
        }
    }

    @Test func otherKeyNoneAndGarbageAreInvalid() async throws {
        let verifier = try await Self.verifier()
        await #expect(throws: AuthenticationError.invalidToken) {
            try await verifier.principal(token: try await Self.hs256(Self.claims(), secret: Self.otherSecret))
        }
        let none = JWTKeyCollection()
        await none.addUnsecuredNone()
        let unsigned = try await none.sign(Self.claims())
        await #expect(throws: AuthenticationError.invalidToken) { try await verifier.principal(token: unsigned) }
        for garbage in ["", "abc", "a.b.c", "a.b", String(repeating: "x", count: 9000), "eyJhbGciOiJIUzI1NiJ9.e30.", "....."] {
            await #expect(throws: AuthenticationError.invalidToken) { try await verifier.principal(token: garbage) }
        }
        // A valid token with one payload byte changed.
        var altered = Array(try await Self.hs256(Self.claims()))
        let dot = altered.firstIndex(of: ".")!
        altered[dot + 3] = altered[dot + 3] == "A" ? "B" : "A"
        await #expect(throws: AuthenticationError.invalidToken) { try await verifier.principal(token: String(altered)) }
    }

    @Test func issuerAndAudienceMustMatchWhenConfigured() async throws {
        let verifier = try await Self.verifier(AuthConfiguration(jwtSecret: Self.secret, issuer: "https://id.example", audience: "orders"))
        _ = try await verifier.principal(token: try await Self.hs256(Self.claims(issuer: "https://id.example", audience: "orders")))
        await #expect(throws: AuthenticationError.wrongIssuer) {
            try await verifier.principal(token: try await Self.hs256(Self.claims(issuer: "https://evil.example", audience: "orders")))
        }
        await #expect(throws: AuthenticationError.wrongIssuer) {
            try await verifier.principal(token: try await Self.hs256(Self.claims(audience: "orders")))
        }
        await #expect(throws: AuthenticationError.wrongAudience) {
            try await verifier.principal(token: try await Self.hs256(Self.claims(issuer: "https://id.example", audience: "billing")))
        }
    }

    @Test func startRefusesWithoutKeysOrWithAShortSecret() async throws {
        await #expect(throws: AuthConfiguration.Invalid.self) { try await AuthConfiguration().mode() }
        await #expect(throws: AuthConfiguration.Invalid.self) { try await AuthConfiguration(jwtSecret: "short").mode() }
        if case .disabled = try await AuthConfiguration(disabled: true).mode() {} else { Issue.record("AUTH_DISABLED=true must disable") }
        do {
            _ = try await AuthConfiguration().mode()
        } catch {
            #expect(error.description.contains("AUTH_JWT_SECRET") && error.description.contains("AUTH_JWKS_FILE"))
        }
    }
}

/// RS256 and ES256 keys from a JWKS file, as a company's identity provider publishes them.
@Suite struct JWKSTests {
    struct Provider {
        let rsa: JWTKit.Insecure.RSA.PrivateKey
        let ec: ES256PrivateKey
        let keys = JWTKeyCollection()
        let jwksPath: String

        init() async throws {
            rsa = try JWTKit.Insecure.RSA.PrivateKey(backing: _RSA.Signing.PrivateKey(keySize: .bits2048))
            ec = ES256PrivateKey()
            await keys.add(rsa: rsa, digestAlgorithm: .sha256, kid: "rsa-2026")
            await keys.add(ecdsa: ec, kid: "ec-2026")
            let (n, e) = try rsa.publicKey.getKeyPrimitives()
            let (x, y) = try #require(ec.publicKey.parameters)
            let jwks = """
                {"keys": [
                  {"kty": "RSA", "kid": "rsa-2026", "alg": "RS256", "use": "sig", "n": "\(n.base64URL)", "e": "\(e.base64URL)"},
                  {"kty": "EC", "kid": "ec-2026", "alg": "ES256", "use": "sig", "crv": "P-256", "x": "\(x)", "y": "\(y)"}
                ]}
                """
            jwksPath = NSTemporaryDirectory() + "jwks-\(UUID().uuidString).json"
            try jwks.write(toFile: jwksPath, atomically: true, encoding: String.Encoding.utf8)
        }

        func token(kid: String) async throws -> String {
            try await keys.sign(AccessTokenVerifierTests.claims(), kid: JWKIdentifier(string: kid))
        }
    }

    @Test func twoKeysAtOnceEachChosenByKid() async throws {
        let provider = try await Provider()
        defer { try? FileManager.default.removeItem(atPath: provider.jwksPath) }
        let verifier = try await AccessTokenVerifier(configuration: AuthConfiguration(jwksFile: provider.jwksPath))
        #expect(try await verifier.principal(token: try await provider.token(kid: "rsa-2026")).subject == "user-1")
        #expect(try await verifier.principal(token: try await provider.token(kid: "ec-2026")).subject == "user-1")
        // A key the JWKS does not have (signed by another provider under a known kid).
        let stranger = JWTKeyCollection()
        await stranger.add(ecdsa: ES256PrivateKey(), kid: "ec-2026")
        let forged = try await stranger.sign(AccessTokenVerifierTests.claims(), kid: "ec-2026")
        await #expect(throws: AuthenticationError.invalidToken) { try await verifier.principal(token: forged) }
    }

    /// HS256 "signed" with the RS256 public key as the HMAC secret must not pass as that key.
    @Test func algorithmConfusionIsRefused() async throws {
        let provider = try await Provider()
        defer { try? FileManager.default.removeItem(atPath: provider.jwksPath) }
        let verifier = try await AccessTokenVerifier(configuration: AuthConfiguration(jwksFile: provider.jwksPath))
        let attacker = JWTKeyCollection()
        let publicPEM = try provider.rsa.publicKey.pemRepresentation
        await attacker.add(hmac: HMACKey(from: publicPEM), digestAlgorithm: .sha256, kid: "rsa-2026")
        let confused = try await attacker.sign(AccessTokenVerifierTests.claims(), kid: "rsa-2026")
        await #expect(throws: AuthenticationError.invalidToken) { try await verifier.principal(token: confused) }
    }

    @Test func jwksAndSecretTogether() async throws {
        let provider = try await Provider()
        defer { try? FileManager.default.removeItem(atPath: provider.jwksPath) }
        let verifier = try await AccessTokenVerifier(configuration: AuthConfiguration(jwtSecret: AccessTokenVerifierTests.secret,
                                                                                      jwksFile: provider.jwksPath))
        _ = try await verifier.principal(token: try await provider.token(kid: "rsa-2026"))
        _ = try await verifier.principal(token: try await AccessTokenVerifierTests.hs256(AccessTokenVerifierTests.claims()))
        // HS256 goes to the secret whatever its `kid` (PyJWT and most libraries send none)...
        #expect(try await verifier.principal(token: try await Self.hs256(kid: nil)).subject == "user-1")
        #expect(try await verifier.principal(token: try await Self.hs256(kid: "idp-2026")).subject == "user-1")
        // ...unless the `kid` names a JWKS key: that key decides the algorithm.
        await #expect(throws: AuthenticationError.invalidToken) { try await verifier.principal(token: try await Self.hs256(kid: "rsa-2026")) }
        await #expect(throws: AuthenticationError.invalidToken) {
            try await verifier.principal(token: try await Self.hs256(kid: "idp-2026", secret: AccessTokenVerifierTests.otherSecret))
        }
    }

    @Test func hs256WithAnyKidUsesTheSecret() async throws {
        let verifier = try await AccessTokenVerifierTests.verifier()
        #expect(try await verifier.principal(token: try await Self.hs256(kid: nil)).subject == "user-1")
        #expect(try await verifier.principal(token: try await Self.hs256(kid: "anything")).subject == "user-1")
        await #expect(throws: AuthenticationError.invalidToken) {
            try await verifier.principal(token: try await Self.hs256(kid: "anything", secret: AccessTokenVerifierTests.otherSecret))
        }
    }

    /// An HS256 token as another library makes it: with the given `kid`, or none.
    static func hs256(kid: String?, secret: String = AccessTokenVerifierTests.secret) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: Array(secret.utf8)), digestAlgorithm: .sha256, kid: kid.map { JWKIdentifier(string: $0) })
        return try await keys.sign(AccessTokenVerifierTests.claims(), kid: kid.map { JWKIdentifier(string: $0) })
    }

    /// A key without `alg` would take the algorithm of the first token that names it (jwt-kit caches it).
    @Test func aJWKSKeyWithoutAlgRefusesToStart() async throws {
        let provider = try await Provider()
        defer { try? FileManager.default.removeItem(atPath: provider.jwksPath) }
        let withoutAlg = try String(contentsOfFile: provider.jwksPath, encoding: .utf8).replacingOccurrences(of: #""alg": "RS256", "#, with: "")
        let path = provider.jwksPath + ".noalg.json"
        try withoutAlg.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        await #expect(throws: AuthConfiguration.Invalid.self) { try await AccessTokenVerifier(configuration: AuthConfiguration(jwksFile: path)) }
    }

    @Test func unreadableJWKSRefusesToStart() async throws {
        await #expect(throws: AuthConfiguration.Invalid.self) {
            try await AccessTokenVerifier(configuration: AuthConfiguration(jwksFile: "/nonexistent/jwks.json"))
        }
    }
}

extension Data {
    var base64URL: String {
        base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
