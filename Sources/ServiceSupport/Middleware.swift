import Foundation
import Hummingbird
import Logging
import Metrics
import Synchronization

/// Turns every error into a problem+json response: `Problem`s as they are,
/// Hummingbird's own errors (unknown route, body too large) with their status,
/// anything else as a 500 that is logged but never described to the client.
public struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    let allowedMethods: AllowedMethods<Context>?

    public init(allowedMethods: AllowedMethods<Context>? = nil) {
        self.allowedMethods = allowedMethods
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let problem as Problem {
            return try problem.response(from: request, context: context)
        } catch let error as any HTTPResponseError {
            if error.status == .notFound, let allowed = allowedMethods?.methods(for: request.uri.path), !allowed.isEmpty,
               !allowed.contains(request.method.rawValue) {
                return try Problem(.methodNotAllowed, detail: "this resource allows \(allowed.joined(separator: ", "))",
                                   headers: [.allow: allowed.joined(separator: ", ")]).response(from: request, context: context)
            }
            let problem: Problem = switch error.status {
            case .contentTooLarge: Problem(.contentTooLarge, detail: "the request body is larger than 1 MiB")
            case .notFound: Problem(.notFound, detail: "no such resource")
            case .methodNotAllowed: Problem(.methodNotAllowed, detail: "method not allowed on this resource")
            default: Problem(error.status)
            }
            return try problem.response(from: request, context: context)
        } catch {
            context.logger.error("unhandled error", metadata: ["error.type": "\(String(reflecting: type(of: error)))"])
            return try Problem(.internalServerError, detail: "an unexpected error occurred").response(from: request, context: context)
        }
    }
}

/// The methods each route allows, so a known path with an unknown method is a
/// 405 with `Allow` (Hummingbird's router answers 404 for both). The table is
/// read from the router once, at the first miss, when every route is added.
public final class AllowedMethods<Context: RequestContext>: @unchecked Sendable {
    // @unchecked: `router` is only read, once, under `lock`, after set-up is over.
    private let router: Router<Context>
    private let lock = NSLock()
    private var table: [(segments: [Substring], methods: [String])]?

    public init(_ router: Router<Context>) { self.router = router }

    func methods(for path: String) -> [String]? {
        lock.lock()
        defer { lock.unlock() }
        if table == nil {
            var byPath: [String: Set<String>] = [:]
            for route in router.routes { byPath["\(route.path)", default: []].insert(route.method.rawValue) }
            table = byPath.map { (Array($0.key.split(separator: "/", omittingEmptySubsequences: false)), $0.value.sorted()) }
        }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        return table?.first { entry in
            entry.segments.count == segments.count
                && zip(entry.segments, segments).allSatisfy { $0.hasPrefix("{") || $0.hasPrefix(":") || $0 == $1 }
        }?.methods
    }
}

/// Request count and latency histogram by route, method and status.
public struct RouteMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    private let handles = RouteMetricHandles()

    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        let (requests, duration) = handles.for(route: context.endpointPath ?? "unmatched", method: request.method.rawValue,
                                              status: response.status.code)
        requests.increment()
        duration.record(duration: ContinuousClock.now - start)
        return response
    }
}

/// The counter and timer of each route, method and status, made once: making them per request
/// (swift-metrics' factory validates the names and looks the series up under the registry's lock)
/// cost every request a few microseconds. Routes are the router's paths and NIO's parser accepts
/// only known methods, so the set is small; `limit` bounds it all the same.
final class RouteMetricHandles: Sendable {
    struct Key: Hashable {
        let route: String, method: String, status: Int
    }

    static let limit = 1000
    private let made = Mutex<[Key: (Counter, Timer)]>([:])

    func `for`(route: String, method: String, status: Int) -> (Counter, Timer) {
        let key = Key(route: route, method: method, status: status)
        if let found = made.withLock({ $0[key] }) { return found }
        let dimensions = [("route", route), ("method", method), ("status", String(status))]
        let handles = (Counter(label: "http_requests_total", dimensions: dimensions),
                       Timer(label: "http_request_duration_seconds", dimensions: dimensions))
        made.withLock { if $0.count < Self.limit { $0[key] = handles } }
        return handles
    }
}
