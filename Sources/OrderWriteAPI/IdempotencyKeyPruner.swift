import Logging
import OrderStore
import ServiceLifecycle

/// Deletes idempotency keys past their retention once an hour. The contract
/// promises at least 24 hours; keys are kept 48.
public struct IdempotencyKeyPruner: Service {
    let service: WriteService
    let retentionHours: Int
    let logger: Logger

    public init(service: WriteService, retentionHours: Int = 48, logger: Logger) {
        self.service = service
        self.retentionHours = retentionHours
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let removed = try await service.pruneIdempotencyKeys(olderThanHours: retentionHours)
                if removed > 0 { logger.info("pruned idempotency keys", metadata: ["idempotency.removed": "\(removed)"]) }
            } catch {
                logger.warning("could not prune idempotency keys", metadata: ["error": "\(error)"])
            }
            try? await gracefulShutdownAwareSleep(.seconds(3600))
        }
    }
}

/// Sleeps until the duration passed or graceful shutdown began.
func gracefulShutdownAwareSleep(_ duration: Duration) async throws {
    try await cancelWhenGracefulShutdown { try await Task.sleep(for: duration) }
}
