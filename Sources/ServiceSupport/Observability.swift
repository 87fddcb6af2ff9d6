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
}

/// Runs services until SIGTERM or SIGINT, then shuts them down gracefully: they stop taking new
/// work and finish what they have; after `stopGrace` (guarantee 7: 10 s) what is left is cancelled.
public func runUntilSignalled(_ services: [any Service], stopGrace: Duration = .seconds(10), logger: Logger) async throws {
    var configuration = ServiceGroupConfiguration(services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint],
                                                  logger: logger)
    configuration.maximumGracefulShutdownDuration = stopGrace
    try await ServiceGroup(configuration: configuration).run()
}
