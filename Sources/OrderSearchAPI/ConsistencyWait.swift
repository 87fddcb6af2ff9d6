import Synchronization

/// Bounds read-your-writes waiting: how often one request polls, and how many
/// requests of this process may wait at once.
public struct ConsistencyWaitPolicy: Sendable {
    /// Requests waiting at once; one more gets 503 with Retry-After (`CONSISTENCY_MAX_WAITERS`).
    public var maxWaiters = 64
    /// The first pause between polls; it doubles up to `maxInterval`, so a
    /// 10 s wait makes at most about 30 `_count` calls.
    public var firstInterval: Duration = .milliseconds(10)
    public var maxInterval: Duration = .milliseconds(400)

    public init() {}

    public init(environment: [String: String]) {
        if let count = environment["CONSISTENCY_MAX_WAITERS"].flatMap(Int.init), count >= 0 { maxWaiters = count }
    }

    /// The pauses of one wait, in order, until their sum reaches `total`.
    public func pauses(within total: Duration) -> [Duration] {
        var result: [Duration] = []
        var elapsed: Duration = .zero, next = firstInterval
        while elapsed < total {
            let pause = min(next, total - elapsed)
            result.append(pause)
            elapsed += pause
            next = min(next * 2, maxInterval)
        }
        return result
    }
}

/// The waiting slots of one process.
final class ConsistencyWaiters: Sendable {
    private let waiting = Mutex(0)
    let limit: Int

    init(limit: Int) { self.limit = limit }

    /// Runs `body` in a slot, or returns nil at once when every slot is taken.
    func withSlot<T>(_ body: () async throws -> T) async rethrows -> T? {
        let admitted = waiting.withLock { count -> Bool in
            guard count < limit else { return false }
            count += 1
            return true
        }
        guard admitted else { return nil }
        defer { waiting.withLock { $0 -= 1 } }
        return try await body()
    }
}
