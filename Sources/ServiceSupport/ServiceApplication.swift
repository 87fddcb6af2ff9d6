import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import Security

/// The HTTP limits every process applies (the contract's Conventions).
public struct HTTPServerLimits: Sendable {
    /// A connection that sends nothing for this long is closed (slow or idle clients).
    public var idleTimeout: Duration = .seconds(60)
    /// Connections accepted at once; beyond that, new ones wait in the listen backlog.
    public var maximumConnections = 1024

    public init() {}

    public init(environment: [String: String]) {
        if let seconds = environment["HTTP_IDLE_TIMEOUT_SECONDS"].flatMap(Int.init), seconds > 0 { idleTimeout = .seconds(seconds) }
        if let count = environment["HTTP_MAX_CONNECTIONS"].flatMap(Int.init), count > 0 { maximumConnections = count }
    }
}

/// The one place an HTTP process is assembled: the router's standard
/// middleware (metrics, problem+json, authentication) comes from `makeServiceRouter`,
/// the server's limits and address from here.
public func buildServiceApplication(
    router: Router<AppRequestContext>, name: String, address: HostAndPort, limits: HTTPServerLimits = .init(), logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let idle = TimeAmount.nanoseconds(Int64(limits.idleTimeout.components.seconds) * 1_000_000_000
        + limits.idleTimeout.components.attoseconds / 1_000_000_000)
    return Application(
        router: router,
        server: .http1(configuration: .init(idleTimeout: idle)),
        configuration: .init(address: .hostname(address.host, port: address.port), serverName: name,
                             availableConnectionsDelegate: MaximumAvailableConnections(limits.maximumConnections)),
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
        logger: logger
    )
}

/// A router with the middleware every process uses, in order: route metrics,
/// problem+json for every error, then authentication; plus `/health`, `/ready`
/// and `/metrics` (role `metrics` or `staff`).
public func makeServiceRouter(
    auth: AuthConfiguration.Mode, openAPIDocument: [UInt8]? = nil, isPublic: (@Sendable (String) -> Bool)? = nil,
    readiness: @escaping @Sendable () async -> String?
) -> Router<AppRequestContext> {
    let router = Router(context: AppRequestContext.self)
    router.add(middleware: RouteMetricsMiddleware())
    router.add(middleware: ProblemMiddleware(allowedMethods: AllowedMethods(router)))
    if let isPublic {
        router.add(middleware: AuthenticationMiddleware(mode: auth, isPublic: isPublic))
    } else {
        router.add(middleware: AuthenticationMiddleware(mode: auth))
    }
    Observability.addOperationalRoutes(to: router, readiness: readiness)
    if let openAPIDocument {
        router.get("/openapi.json") { _, _ in Response.json(.ok, bytes: openAPIDocument, headers: [.cacheControl: "max-age=300"]) }
    }
    return router
}

/// A process's OpenAPI document, bundled as a package resource beside the code it describes.
public enum OpenAPIDocument {
    public static func load(_ bundle: Bundle) -> [UInt8] {
        guard let url = bundle.url(forResource: "openapi", withExtension: "json"), let data = try? Data(contentsOf: url) else {
            preconditionFailure("openapi.json is not bundled")
        }
        return Array(data)
    }
}
