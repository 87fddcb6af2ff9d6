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

/// The wait after a partial batch, shared by a process's workers: for a notification (true) or the
/// polling interval (false). With a batch delay (`INDEXER_BATCH_DELAY_MS`) one worker at a time
/// gathers: it waits the delay out and then claims. A worker woken meanwhile leaves the new events
/// to that claim (it comes after their commit, which the notification follows) and waits again.
/// Were each woken worker to wait out a delay of its own, the workers would take turns claiming an
/// event or two each, and the per-batch cost on the database (claim, document read,
/// acknowledgement) would stay per event (`scripts/bench isolation`, `indexer_events_per_request_*`).
final class BatchGathering: Sendable {
    let wake: WakeSignal
    let delay: Duration
    let pollInterval: Duration
    private let gathering = Mutex(false)

    init(wake: WakeSignal, delay: Duration, pollInterval: Duration) {
        self.wake = wake
        self.delay = delay
        self.pollInterval = pollInterval
    }

    func waitForEvents(after generation: Int, stopping: Flag) async -> Bool {
        var seen = generation
        while true {
            let notified = await wake.wait(after: seen, timeout: pollInterval)
            guard delay > .zero, notified, !Task.isCancelled, !stopping.isSet else { return notified }
            seen = wake.generation
            guard gathering.withLock({ was in defer { was = true }; return !was }) else { continue }
            try? await Task.sleep(for: delay)
            gathering.withLock { $0 = false }
            return true
        }
    }
}
