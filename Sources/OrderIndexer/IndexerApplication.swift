import ElasticsearchClient
import Hummingbird
import Logging
import LibPQClient
import ReadModel
import Security
import ServiceSupport

/// The indexer's ops endpoint: `/health`, `/ready` (PostgreSQL and
/// Elasticsearch answer), `/metrics` (with a `metrics` or `staff` token).
public func buildIndexerMetricsApplication(
    pool: PostgresPool, client: ElasticsearchClient, alias: String, auth: AuthConfiguration.Mode, address: HostAndPort, logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let router = makeServiceRouter(auth: auth) {
        if (try? await pool.query("SELECT 1")) == nil { return "postgresql" }
        if await !client.ping(alias) { return "elasticsearch" }
        return nil
    }
    return buildServiceApplication(router: router, name: "order-indexer", address: address, logger: logger, onServerRunning: onServerRunning)
}
