import Synchronization

/// How many requests a process may have out at once to a server that can fall behind: additive
/// increase, multiplicative decrease (TCP's rule, applied to requests in flight).
///
/// Why: a search server works through its requests one queue at a time, and a request that times
/// out is not undone. When several workers per process each keep a large bulk request out, a
/// server that slowed down (a reindex, a rebuild, a long soak) has a queue longer than any
/// timeout; every request is abandoned, sent again and done twice. A 30-minute soak ended that
/// way: six 2,000-document requests always out, each timing out after 78 s, the head event sent
/// 52 times while the server answered small writes in 1.5 s. Fewer requests in flight keep the
/// queue, and so each request's wait, short enough to finish.
///
/// - An answer the caller calls slow (`AdaptiveTimeout.answered(after:)`: it took more than the
///   configured timeout allows for), or a timeout, halves the limit, down to 1. Only once per
///   round: a request sent before the previous decrease reflects the old load, not the new one.
/// - Every `limit` answers in a row that were not slow raise it by one, up to `maximum`.
///
/// One instance per process and server (a reference type on purpose), shared by its workers.
public final class ConcurrencyWindow: Sendable {
    public let maximum: Int

    private struct State {
        var limit: Int
        var goodAnswers = 0
        var decreasedAt: ContinuousClock.Instant?
    }

    private let state: Mutex<State>

    public init(maximum: Int) {
        self.maximum = max(1, maximum)
        state = Mutex(State(limit: self.maximum))
    }

    /// How many requests may be out now.
    public var limit: Int { state.withLock { $0.limit } }

    /// A request sent at `sentAt` was answered; `slow` when it took longer than the server should.
    public func answered(sentAt: ContinuousClock.Instant, slow: Bool) {
        if slow { return decrease(sentAt: sentAt) }
        let maximum = self.maximum
        state.withLock { state in
            state.goodAnswers += 1
            guard state.goodAnswers >= state.limit else { return }
            state.goodAnswers = 0
            state.limit = min(state.limit + 1, maximum)
        }
    }

    /// A request sent at `sentAt` got no answer in time.
    public func timedOut(sentAt: ContinuousClock.Instant) { decrease(sentAt: sentAt) }

    private func decrease(sentAt: ContinuousClock.Instant) {
        state.withLock { state in
            state.goodAnswers = 0
            if let decreasedAt = state.decreasedAt, sentAt < decreasedAt { return }
            state.limit = max(1, state.limit / 2)
            state.decreasedAt = .now
        }
    }
}
