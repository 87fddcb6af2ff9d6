import LibPQClient
import ServiceTesting

extension TestDatabase {
    /// Runs `body` with a fresh migrated database and closes it afterwards.
    static func with(poolSize: Int = 4, _ body: (TestDatabase) async throws -> Void) async throws {
        try await withScoped({ try await create(poolSize: poolSize) }, stop: { await $0.close() }, body)
    }
}

/// Runs `body` with a pool of `configuration`, shut down afterwards.
func withPool(_ configuration: PostgresPool.Configuration, _ body: (PostgresPool) async throws -> Void) async throws {
    try await withScoped({ PostgresPool(configuration: configuration, logger: TestEnvironment.logger) }, stop: { await $0.shutdown() }, body)
}
