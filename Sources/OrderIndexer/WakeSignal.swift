import Synchronization

/// Wakes a waiting worker when a NOTIFY arrived, or lets each time out after the polling
/// interval: NOTIFY is an optimization, polling is the guarantee.
///
/// A notification wakes one worker, the one waiting longest: it claims everything committed so
/// far, and a worker woken beside it would only find nothing (an empty claim still costs
/// PostgreSQL an index scan and a look at the reindex lock; at 300 events/s the claims that found
/// nothing used more of the database than the ones that did). Another notification while that
/// worker is busy wakes the next one. A notification that found nobody waiting moves the
/// generation on, and a worker that was busy then does not wait at all: the generation it saw
/// before its claim is out of date. One handed to a waiting worker does not: that worker claims
/// the event, and a busy one claiming it too would only find nothing (a third of all claims at
/// 300 events/s, before). A woken worker that may not
/// claim (the congestion window holds it back) passes the notification on with another `signal()`,
/// which is why `wait` says whether a notification ended it.
///
/// Timeouts are kept by one task that looks for overdue waiters every `tick` (so a wait lasts
/// up to a tick longer than asked), not by a timer task per wait: a worker waits after nearly
/// every batch at low rates, and each such timer, cancelled by the notification, cost thread
/// wake-ups of its own (`LeaseKeeper` says why that counts).
final class WakeSignal: Sendable {
    private struct Waiter {
        let continuation: CheckedContinuation<Bool, Never>
        let deadline: ContinuousClock.Instant
    }

    private struct State {
        var generation = 0
        /// Keyed by arrival: the smallest key has waited longest.
        var waiters: [Int: Waiter] = [:]
        var nextID = 0
    }

    private let state = Mutex(State())
    private let tick: Duration
    private let ticker = Mutex<Task<Void, Never>?>(nil)

    init(tick: Duration = .milliseconds(50)) {
        self.tick = tick
    }

    deinit {
        ticker.withLock { $0?.cancel() }
    }

    /// Wakes the worker waiting longest; with nobody waiting, moves the generation on.
    func signal() {
        let waiter = state.withLock { state -> Waiter? in
            guard let first = state.waiters.keys.min() else {
                state.generation += 1
                return nil
            }
            return state.waiters.removeValue(forKey: first)
        }
        waiter?.continuation.resume(returning: true)
    }

    /// Wakes every waiting worker (the process is stopping).
    func signalAll() {
        let waiters = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            state.generation += 1
            defer { state.waiters.removeAll() }
            return state.waiters.values.map(\.continuation)
        }
        waiters.forEach { $0.resume(returning: true) }
    }

    var generation: Int { state.withLock { $0.generation } }

    /// Workers waiting now.
    var waiting: Int { state.withLock { $0.waiters.count } }

    /// Returns when signalled after `seen` (true) or when `timeout` passed (up to a tick later) or
    /// the task was cancelled (false).
    @discardableResult
    func wait(after seen: Int, timeout: Duration) async -> Bool {
        startTicker()
        let deadline = ContinuousClock.now + timeout
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let immediate = state.withLock { state -> Bool? in
                    if Task.isCancelled { return false }
                    if state.generation != seen { return true }
                    state.waiters[id] = Waiter(continuation: continuation, deadline: deadline)
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.continuation.resume(returning: false)
        }
    }

    /// Ends the waits whose deadline has passed (false).
    private func expireOverdue() {
        let now = ContinuousClock.now
        let overdue = state.withLock { state -> [Waiter] in
            let ids = state.waiters.filter { $0.value.deadline <= now }.map(\.key)
            return ids.compactMap { state.waiters.removeValue(forKey: $0) }
        }
        overdue.forEach { $0.continuation.resume(returning: false) }
    }

    private func startTicker() {
        ticker.withLock { task in
            guard task == nil else { return }
            let tick = self.tick
            task = Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: tick)
                    guard let self else { return }
                    self.expireOverdue()
                }
            }
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
