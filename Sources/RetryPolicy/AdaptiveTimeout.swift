import Synchronization

/// How long to wait for a server that is slow but answering, learned from its answers.
///
/// Why not a fixed timeout: a request that times out is not undone. The server goes on
/// with it, and the retry queues the same work behind it. When a saturated server's queue
/// grows past a fixed timeout, every request is abandoned and sent again, and the server
/// spends itself on answers nobody reads: a 30-minute soak saw bulk requests to a busy
/// search server time out and be re-sent up to 23 times while the outbox drained at about
/// 3 events/s. So the timeout follows the latency the server shows:
///
/// - every answer sets it to at least `multiple` × that answer's latency, and lets it decay
///   by a tenth toward `floor` otherwise, so it rises as fast as the queue and falls slowly;
/// - a timeout doubles it, but only if the server is still answering: an answer arrived since
///   the previous timeout, or the caller's own probe just got one (`timedOut(answering:)`). A
///   server that stops answering altogether (a black hole rather than a slow server) raises it at
///   most once, so whoever waits on it with work in hand gives that work up in bounded time.
///   The probe matters when several processes share the server: a process whose own requests all
///   wait in its queue hears nothing between its timeouts, and without the probe it would stay at
///   twice the floor and abandon every request the queue holds longer than that;
/// - it always stays within `floor...ceiling`.
///
/// One instance is shared by all of a process's requests to the same server (a reference
/// type on purpose): they all wait in the same queue.
public final class AdaptiveTimeout: Sendable {
    public struct Policy: Sendable, Equatable {
        public var floor: Duration
        public var ceiling: Duration
        public var multiple: Int

        public init(floor: Duration, ceiling: Duration, multiple: Int = 3) {
            self.floor = floor
            self.ceiling = max(ceiling, floor)
            self.multiple = max(1, multiple)
        }
    }

    private struct State {
        var current: Duration
        var answeredSinceTimeout = true
    }

    public let policy: Policy
    private let state: Mutex<State>

    public init(_ policy: Policy) {
        self.policy = policy
        state = Mutex(State(current: policy.floor))
    }

    /// The timeout for the next request.
    public var current: Duration { state.withLock { $0.current } }

    /// Whether the server answered since the last timeout: if so, a timeout needs no probe to count as busy.
    public var answeredSinceTimeout: Bool { state.withLock { $0.answeredSinceTimeout } }

    /// The server answered (any HTTP answer) after `latency`. Returns whether that was slow: longer
    /// than the floor allows for (`multiple` × latency beyond it), so the timeout had to rise.
    @discardableResult
    public func answered(after latency: Duration) -> Bool {
        let policy = self.policy
        state.withLock { state in
            let decayed = state.current - (state.current - policy.floor) / 10
            state.current = Self.clamp(max(decayed, latency * policy.multiple), policy)
            state.answeredSinceTimeout = true
        }
        return latency * policy.multiple > policy.floor
    }

    /// A request got no answer within its timeout. Returns whether the server is busy rather than
    /// gone: it answered something since the previous timeout (or this is the first), or
    /// `answering` (the caller probed it just now and it answered), so it is most likely still
    /// working on the abandoned request.
    @discardableResult
    public func timedOut(answering: Bool = false) -> Bool {
        let policy = self.policy
        return state.withLock { state in
            let busy = state.answeredSinceTimeout || answering
            if busy { state.current = Self.clamp(state.current * 2, policy) }
            state.answeredSinceTimeout = false
            return busy
        }
    }

    private static func clamp(_ value: Duration, _ policy: Policy) -> Duration {
        min(max(value, policy.floor), policy.ceiling)
    }
}
