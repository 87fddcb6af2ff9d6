import Foundation
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
        // Commit → acknowledged and bulk durations: about ten buckets per decade from 1 ms to 10 s
        // (each bound 1.26× the last), so histogram_quantile can tell 5 ms from 6 ms and 2 s from 2.5 s.
        let fine: [Duration] = (0...40).map { .microseconds(Int((1000 * pow(10, Double($0) / 10)).rounded())) }
        factory.durationHistogramBuckets["indexer_commit_to_ack_seconds"] = fine
        factory.durationHistogramBuckets["indexer_bulk_duration_seconds"] = fine
        MetricsSystem.bootstrap(factory)
    }
}

/// Runs services until SIGTERM or SIGINT, then shuts them down gracefully: they stop taking new
/// work and finish what they have; after `stopGrace` (guarantee 7: 10 s) what is left is cancelled.
public func runUntilSignalled(_ services: [any Service], stopGrace: Duration = .seconds(10), logger: Logger) async throws {
    var configuration = ServiceGroupConfiguration(services: ([HeapTrimmer()] + services).map { .init(service: $0) },
                                                  gracefulShutdownSignals: [.sigterm, .sigint],
                                                  logger: logger)
    configuration.maximumGracefulShutdownDuration = stopGrace
    try await ServiceGroup(configuration: configuration).run()
}
