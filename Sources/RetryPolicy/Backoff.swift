/// The one retry policy of the system: exponential backoff from `initial`,
/// capped at `maximum`, with "equal jitter" (a delay drawn from the upper half
/// of the step, so retries spread out yet never come back sooner than half the
/// step). Used for bulk retries, transaction retries after a serialization
/// failure, and the indexer's failed batches, each with its own bounds.
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

    /// The delay before retry number `attempt` (1 for the first retry).
    public func delay(attempt: Int) -> Duration {
        let step = min(initial * (1 << min(max(attempt - 1, 0), 20)), maximum)
        let ms = max(1, Int(step.components.seconds * 1000 + step.components.attoseconds / 1_000_000_000_000_000))
        return .milliseconds(Int.random(in: max(1, ms / 2)...ms))
    }
}
