import Synchronization

/// Wakes a waiting worker when a NOTIFY arrived, or lets each time out after the polling
/// interval: NOTIFY is an optimization, polling is the guarantee.
///
/// A notification wakes one worker, the one waiting longest: it claims everything committed so
/// far, and a worker woken beside it would only find nothing (an empty claim still costs
/// PostgreSQL an index scan and a look at the reindex lock; at 300 events/s the claims that found
/// nothing used more of the database than the ones that did). Another notification while that
/// worker is busy wakes the next one. A worker that was busy when a notification came does not
/// wait at all: the generation it saw before its claim is out of date. A woken worker that may not
/// claim (the congestion window holds it back) passes the notification on with another `signal()`,
/// which is why `wait` says whether a notification ended it.
final class WakeSignal: Sendable {
    private struct State {
        var generation = 0
        /// Keyed by arrival: the smallest key has waited longest.
        var waiters: [Int: CheckedContinuation<Bool, Never>] = [:]
        var nextID = 0
    }

    private let state = Mutex(State())

    /// Wakes the worker waiting longest, if any.
    func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            state.generation += 1
            guard let first = state.waiters.keys.min() else { return nil }
            return state.waiters.removeValue(forKey: first)
        }
        waiter?.resume(returning: true)
    }

    /// Wakes every waiting worker (the process is stopping).
    func signalAll() {
        let waiters = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            state.generation += 1
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        waiters.forEach { $0.resume(returning: true) }
    }

    var generation: Int { state.withLock { $0.generation } }

    /// Workers waiting now.
    var waiting: Int { state.withLock { $0.waiters.count } }

    /// Returns when signalled after `seen` (true) or when `timeout` passed or the task was
    /// cancelled (false).
    @discardableResult
    func wait(after seen: Int, timeout: Duration) async -> Bool {
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        let timer = Task {
            try? await Task.sleep(for: timeout)
            let waiter = self.state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume(returning: false)
        }
        defer { timer.cancel() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let immediate = state.withLock { state -> Bool? in
                    if Task.isCancelled { return false }
                    if state.generation != seen { return true }
                    state.waiters[id] = continuation
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume(returning: false)
        }
    }
}
