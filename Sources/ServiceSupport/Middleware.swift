import Hummingbird
import Logging
import Metrics

/// Turns every error into a problem+json response: `Problem`s as they are,
/// Hummingbird's own errors (unknown route, body too large) with their status,
/// anything else as a 500 that is logged but never described to the client.
public struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let problem as Problem {
            return try problem.response(from: request, context: context)
        } catch let error as any HTTPResponseError {
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

/// Request count and latency histogram by route, method and status.
public struct RouteMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        let route = context.endpointPath ?? "unmatched"
        let dimensions = [("route", route), ("method", request.method.rawValue), ("status", String(response.status.code))]
        Counter(label: "http_requests_total", dimensions: dimensions).increment()
        Timer(label: "http_request_duration_seconds", dimensions: dimensions).recordInterval(since: start)
        return response
    }
}

extension Timer {
    func recordInterval(since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
    }
}
