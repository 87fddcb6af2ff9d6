import Synchronization
import Testing
@testable import OrderIndexer

/// A notification wakes one waiting worker (an empty claim beside it costs the database for
/// nothing); a stop wakes them all; a notification while a worker was busy is not lost.
@Suite struct WakeSignalTests {
    /// Starts `count` waiters on `signal` and returns how many have returned after `action`.
    private func woken(_ count: Int, timeout: Duration = .seconds(30), after action: @Sendable (WakeSignal) -> Void) async throws -> Int {
        let signal = WakeSignal()
        let seen = signal.generation
        let returned = Returned()
        return try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<count {
                group.addTask {
                    await signal.wait(after: seen, timeout: timeout)
                    returned.count.withLock { $0 += 1 }
                }
            }
            try await Self.until { signal.waiting == count }  // every waiter parked, however slow the machine
            action(signal)
            // The woken ones return (however slow the machine), and then nobody else does.
            try await Self.until { returned.count.withLock { $0 } + signal.waiting == count }
            try await Task.sleep(for: .milliseconds(200))
            let result = returned.count.withLock { $0 }
            group.cancelAll()  // releases the rest
            return result
        }
    }

    /// Polls `condition` for up to 10 s.
    private static func until(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
    }

    private final class Returned: Sendable {
        let count = Mutex(0)
    }

    @Test func aNotificationWakesOneWaiter() async throws {
        #expect(try await woken(2) { $0.signal() } == 1)
    }

    @Test func twoNotificationsWakeTwoWaiters() async throws {
        #expect(try await woken(3) { $0.signal(); $0.signal() } == 2)
    }

    @Test func aStopWakesEveryWaiter() async throws {
        #expect(try await woken(3) { $0.signalAll() } == 3)
    }

    @Test func nobodyWakesWithoutANotificationBeforeTheTimeout() async throws {
        #expect(try await woken(2) { _ in } == 0)
    }

    @Test func aNotificationWhileBusyMakesTheNextWaitReturnAtOnce() async {
        let signal = WakeSignal()
        let seen = signal.generation  // before the worker's claim
        signal.signal()  // a commit while it was claiming: nobody waiting
        let start = ContinuousClock.now
        let notified = await signal.wait(after: seen, timeout: .seconds(30))
        #expect(ContinuousClock.now - start < .seconds(5))
        #expect(notified)
    }

    /// A notification handed to a waiting worker is that worker's to claim: a worker busy at the
    /// time waits after its batch instead of claiming the same event (and finding nothing).
    @Test func aNotificationHandedToAWaiterLeavesTheBusyWorkerWaiting() async throws {
        let signal = WakeSignal(tick: .milliseconds(10))
        let seen = signal.generation  // the busy worker's, before its claim
        async let waiter = signal.wait(after: seen, timeout: .seconds(30))
        try await Self.until { signal.waiting == 1 }
        signal.signal()
        #expect(await waiter)
        #expect(await signal.wait(after: seen, timeout: .milliseconds(300)) == false)
    }

    /// A worker the congestion window holds back passes the notification on only when one woke it.
    @Test func aWaitSaysWhetherANotificationEndedIt() async throws {
        let signal = WakeSignal()
        #expect(await signal.wait(after: signal.generation, timeout: .milliseconds(20)) == false)
        let seen = signal.generation
        async let notified = signal.wait(after: seen, timeout: .seconds(30))
        try await Self.until { signal.waiting == 1 }
        signal.signal()
        #expect(await notified)
    }

    /// Timeouts are kept by the signal's one ticker, not a timer per wait: a wait ends (false) once
    /// its timeout passed, not before, and leaves nothing waiting.
    @Test func aWaitEndsOnceItsTimeoutPassed() async {
        let signal = WakeSignal(tick: .milliseconds(10))
        let start = ContinuousClock.now
        #expect(await signal.wait(after: signal.generation, timeout: .milliseconds(200)) == false)
        let waited = ContinuousClock.now - start
        #expect(waited >= .milliseconds(200))
        #expect(waited < .seconds(5))
        #expect(signal.waiting == 0)
    }

    /// Starts `count` workers waiting for events; each adds one to `returned` when its wait ends.
    private static func startWaiting(_ count: Int, on gathering: BatchGathering, after seen: Int, stopping: Flag, counting returned: Returned,
                                     in group: inout ThrowingTaskGroup<Void, any Error>) {
        for _ in 0..<count {
            group.addTask {
                _ = await gathering.waitForEvents(after: seen, stopping: stopping)
                returned.count.withLock { $0 += 1 }
            }
        }
    }

    /// With a batch delay, a worker woken while another gathers leaves the events to that one's
    /// claim and waits again: the workers do not take turns claiming an event or two each.
    @Test func oneWorkerAtATimeGathersABatch() async throws {
        let signal = WakeSignal()
        let gathering = BatchGathering(wake: signal, delay: .milliseconds(300), pollInterval: .seconds(30))
        let (stopping, returned, seen) = (Flag(), Returned(), signal.generation)
        try await withThrowingTaskGroup(of: Void.self) { group in
            Self.startWaiting(2, on: gathering, after: seen, stopping: stopping, counting: returned, in: &group)
            try await Self.until { signal.waiting == 2 }
            signal.signal()  // the first gathers
            signal.signal()  // the second, woken while the first gathers, waits again
            try await Self.until { returned.count.withLock { $0 } == 1 }
            try await Self.until { signal.waiting == 1 }
            try await Task.sleep(for: .milliseconds(400))  // past any delay of its own
            #expect(returned.count.withLock { $0 } == 1)
            #expect(signal.waiting == 1)
            signal.signal()  // the next batch is the second's
            try await Self.until { returned.count.withLock { $0 } == 2 }
            #expect(returned.count.withLock { $0 } == 2)
        }
    }

    /// A stop ends the wait of a worker that left the events to the gathering one at once, not
    /// after the polling interval.
    @Test func aStopEndsTheWaitBesideAGatheringWorker() async throws {
        let signal = WakeSignal()
        let gathering = BatchGathering(wake: signal, delay: .seconds(20), pollInterval: .seconds(30))
        let (stopping, returned, seen) = (Flag(), Returned(), signal.generation)
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            Self.startWaiting(2, on: gathering, after: seen, stopping: stopping, counting: returned, in: &group)
            try await Self.until { signal.waiting == 2 }
            signal.signal()
            signal.signal()
            try await Self.until { signal.waiting == 1 }
            stopping.set()
            signal.signalAll()
            try await Self.until { returned.count.withLock { $0 } == 1 }
            #expect(returned.count.withLock { $0 } == 1)
            #expect(ContinuousClock.now - start < .seconds(10))
            group.cancelAll()  // the gathering one's delay
        }
    }
}
