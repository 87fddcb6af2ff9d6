import LibPQClient

/// Runs `body` with what `start` made, then `stop`s it, whether `body` returned or threw.
///
/// The scoped form of clean-up (postgres-nio's `withConnection { }`): a `defer { Task { stop } }`
/// only schedules the stop, so it races the next test and swallows its failures.
func withScoped<Resource>(_ start: () async throws -> Resource, stop: (Resource) async -> Void,
                          _ body: (Resource) async throws -> Void) async throws {
    let resource = try await start()
    do {
        try await body(resource)
    } catch {
        await stop(resource)
        throw error
    }
    await stop(resource)
}

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
