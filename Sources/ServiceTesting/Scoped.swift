/// Runs `body` with what `start` made, then `stop`s it, whether `body` returned or threw.
///
/// The scoped form of clean-up (postgres-nio's `withConnection { }`): a `defer { Task { stop } }`
/// only schedules the stop, so it races what comes next and swallows its failures.
public func withScoped<Resource, Result>(_ start: () async throws -> Resource, stop: (Resource) async -> Void,
                                          _ body: (Resource) async throws -> Result) async throws -> Result {
    let resource = try await start()
    let result: Result
    do {
        result = try await body(resource)
    } catch {
        await stop(resource)
        throw error
    }
    await stop(resource)
    return result
}
