import Hummingbird
import Logging
import Metrics
import Prometheus
import Security
import ServiceLifecycle

/// Process-wide logging and metrics set-up, called once from each executable's `main`.
public enum Observability {
    /// The registry `/metrics` renders.
    public static let registry = PrometheusCollectorRegistry()

    public static func bootstrap(label: String) -> Logger {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = ProcessInfoEnvironment.value("LOG_LEVEL").flatMap(Logger.Level.init(rawValue:)) ?? .info
            return handler
        }
        bootstrapMetrics()
        return Logger(label: label)
    }

    /// Routes swift-metrics into the Prometheus registry (once per process).
    public static func bootstrapMetrics() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10),
        ]
        // Finer resolution where the latency targets are (commit → acknowledged: p50 ≤ 10 ms, p99 ≤ 50 ms).
        let fine: [Duration] = [1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 75, 100, 150, 250, 500, 1000, 2500, 5000, 10000]
            .map { .milliseconds($0) }
        factory.durationHistogramBuckets["indexer_commit_to_ack_seconds"] = fine
        factory.durationHistogramBuckets["indexer_bulk_duration_seconds"] = fine
        MetricsSystem.bootstrap(factory)
    }

    /// Adds `/health`, `/ready` and `/metrics`. `readiness` names the first
    /// dependency that does not answer, or nil when all do.
    static func addOperationalRoutes(to router: Router<AppRequestContext>, readiness: @escaping @Sendable () async -> String?) {
        router.get("/health") { _, _ in Response.json(.ok, #"{"status":"ok"}"#) }
        router.get("/ready") { _, _ in
            if let failed = await readiness() {
                throw Problem(.serviceUnavailable, detail: "dependency not ready: \(failed)", extensions: [("dependency", failed)])
            }
            return Response.json(.ok, #"{"status":"ready"}"#)
        }
        router.get("/metrics") { _, context in
            try context.requireRole([.metrics, .staff])
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer()))
            )
        }
    }
}

/// Runs services until SIGTERM or SIGINT, then shuts them down gracefully.
public func runUntilSignalled(_ services: [any Service], logger: Logger) async throws {
    let group = ServiceGroup(
        configuration: .init(services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
    )
    try await group.run()
}

import Foundation

public enum ProcessInfoEnvironment {
    public static func value(_ key: String) -> String? { ProcessInfo.processInfo.environment[key] }
    public static var all: [String: String] { ProcessInfo.processInfo.environment }
}
