import Foundation

/// The `AUTH_*` variables of the contract, read once at start.
public struct AuthConfiguration: Sendable {
    /// HS256 secrets must be at least this long (RFC 7518 §3.2: a key as long as the hash).
    public static let minimumSecretBytes = 32

    public var jwtSecret: String?
    public var jwksFile: String?
    public var issuer: String?
    public var audience: String?
    public var disabled: Bool

    public init(jwtSecret: String? = nil, jwksFile: String? = nil, issuer: String? = nil, audience: String? = nil, disabled: Bool = false) {
        self.jwtSecret = jwtSecret
        self.jwksFile = jwksFile
        self.issuer = issuer
        self.audience = audience
        self.disabled = disabled
    }

    public init(environment: [String: String]) {
        func value(_ key: String) -> String? { environment[key].flatMap { $0.isEmpty ? nil : $0 } }
        self.init(jwtSecret: value("AUTH_JWT_SECRET"), jwksFile: value("AUTH_JWKS_FILE"), issuer: value("AUTH_ISSUER"),
                  audience: value("AUTH_AUDIENCE"), disabled: value("AUTH_DISABLED")?.lowercased() == "true")
    }

    /// A start-up failure; the message names the variables to set and never their values.
    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    /// How requests are authenticated: by a verifier, or (development only) not at all.
    public enum Mode: Sendable {
        case verify(AccessTokenVerifier)
        case disabled
    }

    /// Loads the keys. Refuses to start without any key unless authentication is explicitly disabled.
    public func mode() async throws(Invalid) -> Mode {
        if disabled { return .disabled }
        guard jwtSecret != nil || jwksFile != nil else {
            throw Invalid(description: "no token key: set AUTH_JWT_SECRET (HS256) or AUTH_JWKS_FILE (RS256/ES256), "
                + "or AUTH_DISABLED=true for development only")
        }
        return .verify(try await AccessTokenVerifier(configuration: self))
    }

    func secretBytes() throws(Invalid) -> [UInt8]? {
        guard let jwtSecret else { return nil }
        let bytes = Array(jwtSecret.utf8)
        guard bytes.count >= Self.minimumSecretBytes else {
            throw Invalid(description: "AUTH_JWT_SECRET must be at least \(Self.minimumSecretBytes) bytes long")
        }
        return bytes
    }

    func jwksJSON() throws(Invalid) -> String? {
        guard let jwksFile else { return nil }
        guard let data = FileManager.default.contents(atPath: jwksFile), let text = String(data: data, encoding: .utf8) else {
            throw Invalid(description: "AUTH_JWKS_FILE cannot be read")
        }
        return text
    }
}
