import ElasticsearchClient
import Hummingbird
import Logging
import PostgresClient
import ReadModel
import ServiceSupport

/// The indexer's ops endpoint: `/health`, `/ready` (PostgreSQL and
/// Elasticsearch answer), `/metrics`.
public func buildIndexerMetricsApplication(
    pool: PostgresPool, client: ElasticsearchClient, address: HostAndPort, logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let router = Router(context: BasicRequestContext.self)
    router.add(middleware: ProblemMiddleware())
    Observability.addOperationalRoutes(to: router) {
        if (try? await pool.query("SELECT 1")) == nil { return "postgresql" }
        if await !client.ping() { return "elasticsearch" }
        return nil
    }
    return Application(
        router: router,
        configuration: .init(address: .hostname(address.host, port: address.port), serverName: "order-indexer"),
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
        logger: logger
    )
}

