/// The one retry policy of the system: exponential backoff from `initial`,
/// capped at `maximum`, with "equal jitter" (a delay drawn from the upper half
/// of the step, so retries spread out yet never come back sooner than half the
/// step). Used for bulk retries, transaction retries after a serialization
/// failure, the indexer's failed batches and admin commands' reads, each with its own bounds.
public struct Backoff: Sendable, Equatable {
    public var initial: Duration
    public var maximum: Duration

    public init(initial: Duration, maximum: Duration) {
        self.initial = initial
        self.maximum = maximum
    }

    /// Bulk requests to Elasticsearch: 50 ms up to 10 s.
    public static let bulk = Backoff(initial: .milliseconds(50), maximum: .seconds(10))
    /// A transaction run again after a serialization failure or deadlock: 10 ms up to 320 ms.
    public static let transaction = Backoff(initial: .milliseconds(10), maximum: .milliseconds(320))
    /// An indexer batch that failed as a whole (database or cluster down): 200 ms up to 5 s.
    public static let batch = Backoff(initial: .milliseconds(200), maximum: .seconds(5))

    /// An admin command's reads of a cluster that is busy serving the live indexers: 200 ms up to 10 s.
    public static let adminRead = Backoff(initial: .milliseconds(200), maximum: .seconds(10))

    /// Runs `operation`, and again after each failure `shouldRetry` accepts, until it succeeds or the
    /// next attempt would start after `patience` has passed; then the last failure is thrown.
    public func retrying<T>(for patience: Duration, if shouldRetry: (any Error) -> Bool,
                            _ operation: () async throws -> T) async throws -> T {
        let deadline = ContinuousClock.now + patience
        var attempt = 0
        while true {
            do {
                return try await operation()
            } catch where shouldRetry(error) {
                attempt += 1
                let delay = delay(attempt: attempt)
                guard ContinuousClock.now + delay < deadline else { throw error }
                try await Task.sleep(for: delay)
            }
        }
    }

    /// The delay before retry number `attempt` (1 for the first retry).
    public func delay(attempt: Int) -> Duration {
        let step = min(initial * (1 << min(max(attempt - 1, 0), 20)), maximum)
        let ms = max(1, Int(step.components.seconds * 1000 + step.components.attoseconds / 1_000_000_000_000_000))
        return .milliseconds(Int.random(in: max(1, ms / 2)...ms))
    }
}
