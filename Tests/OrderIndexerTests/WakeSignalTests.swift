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
            try await Task.sleep(for: .milliseconds(200))  // every waiter parked
            action(signal)
            try await Task.sleep(for: .milliseconds(200))
            let result = returned.count.withLock { $0 }
            group.cancelAll()  // releases the rest
            return result
        }
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
        await signal.wait(after: seen, timeout: .seconds(30))
        #expect(ContinuousClock.now - start < .seconds(5))
    }
}
