import Hummingbird
import Logging
import Security

/// The request context of every HTTP process: Hummingbird's core storage plus
/// the principal the authentication middleware verified.
public struct AppRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var principal: Principal?

    public init(source: Source) {
        coreContext = .init(source: source)
        principal = nil
    }

    /// The verified principal. Routes behind `AuthenticationMiddleware` always have one.
    public func requirePrincipal() throws -> Principal {
        guard let principal else { throw Problem.unauthenticated(.missingToken) }
        return principal
    }
}

/// Bearer-token authentication (RFC 6750) for every route but the public ones.
/// Written here rather than with hummingbird-auth's authenticators because the
/// contract wants a problem+json 401 carrying RFC 6750's `WWW-Authenticate`
/// attributes, which hummingbird-auth's `IsAuthenticatedMiddleware` does not give;
/// token verification itself is jwt-kit's (`AccessTokenVerifier`).
public struct AuthenticationMiddleware: RouterMiddleware {
    public typealias Context = AppRequestContext

    /// Paths that need no token (the contract: health, readiness, the OpenAPI document, the staff page).
    public static let defaultPublicPaths: Set<String> = ["/health", "/ready", "/openapi.json"]

    let mode: AuthConfiguration.Mode
    let isPublic: @Sendable (String) -> Bool

    public init(mode: AuthConfiguration.Mode, isPublic: @escaping @Sendable (String) -> Bool = { defaultPublicPaths.contains($0) }) {
        self.mode = mode
        self.isPublic = isPublic
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if isPublic(request.uri.path) { return try await next(request, context) }
        var context = context
        switch mode {
        case .disabled:
            context.principal = .unauthenticatedDeveloper
        case .verify(let verifier):
            do {
                context.principal = try await verifier.principal(token: try Self.bearerToken(request))
            } catch {
                context.logger.info("request not authenticated", metadata: ["auth.failure": "\(error)"])
                throw Problem.unauthenticated(error)
            }
        }
        return try await next(request, context)
    }

    /// The credential of `Authorization: Bearer <token>` (scheme case-insensitive, RFC 7235).
    /// Another scheme (`Basic …`) carries no bearer token: RFC 6750 §3.1 answers it like no
    /// `Authorization` at all, with a bare `Bearer` challenge.
    static func bearerToken(_ request: Request) throws(AuthenticationError) -> String {
        let values = request.headers[values: .authorization]
        guard let value = values.first else { throw .missingToken }
        guard values.count == 1 else { throw .invalidToken }
        let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard let scheme = parts.first, scheme.lowercased() == "bearer" else { throw .missingToken }
        guard parts.count == 2 else { throw .invalidToken }
        let token = parts[1].drop { $0 == " " }
        guard !token.isEmpty, !token.contains(" ") else { throw .invalidToken }
        return String(token)
    }
}

extension Problem {
    /// 401 with RFC 6750's challenge: bare `Bearer` when no token was sent, `error="invalid_token"` otherwise.
    public static func unauthenticated(_ error: AuthenticationError) -> Problem {
        let challenge = error == .missingToken ? "Bearer" : #"Bearer error="invalid_token""#
        return Problem(.unauthorized, detail: error == .missingToken ? "this request needs a bearer token" : "\(error)",
                       headers: [.wwwAuthenticate: challenge])
    }

    public static let forbidden = Problem(.forbidden, detail: "the token's roles do not allow this request")
}

extension AppRequestContext {
    /// Throws 403 unless the principal has one of the roles.
    @discardableResult
    public func requireRole(_ roles: Set<Role>) throws -> Principal {
        let principal = try requirePrincipal()
        guard principal.hasAny(of: roles) else { throw Problem.forbidden }
        return principal
    }

    /// The role table's decision for a resource a customer may own; 403 when nothing allows it.
    public func access(anyResource roles: Set<Role>, customerOnOwn: Bool) throws -> Access {
        let decision = Access.decide(try requirePrincipal(), anyResource: roles, customerOnOwn: customerOnOwn)
        if decision == .forbidden { throw Problem.forbidden }
        return decision
    }
}
