import RetryPolicy
import Testing

@Suite struct BackoffTests {
    let policy = Backoff(initial: .milliseconds(100), maximum: .seconds(2))

    @Test func delaysDoubleWithinTheUpperHalfOfEachStep() {
        for (attempt, step) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1600)] {
            for _ in 0..<50 {
                let delay = policy.delay(attempt: attempt)
                #expect(delay >= .milliseconds(step / 2) && delay <= .milliseconds(step), "attempt \(attempt): \(delay)")
            }
        }
    }

    @Test func delaysAreCappedAndNeverOverflow() {
        for attempt in [6, 10, 64, Int.max] {
            let delay = policy.delay(attempt: attempt)
            #expect(delay >= .seconds(1) && delay <= .seconds(2))
        }
        #expect(policy.delay(attempt: 0) <= .milliseconds(100))
    }

    @Test func theSystemsPoliciesStartSmallAndStayBounded() {
        for backoff in [Backoff.bulk, .transaction, .batch, .adminRead] {
            #expect(backoff.initial < backoff.maximum)
            #expect(backoff.delay(attempt: 1000) <= backoff.maximum)
        }
    }

    struct Busy: Error {}
    struct Broken: Error {}

    @Test func retryingRunsAgainAfterAcceptedFailuresUntilItSucceeds() async throws {
        let attempts = Counter()
        let fast = Backoff(initial: .milliseconds(1), maximum: .milliseconds(4))
        let value = try await fast.retrying(for: .seconds(5), if: { $0 is Busy }) {
            if await attempts.increment() < 4 { throw Busy() }
            return 42
        }
        #expect(value == 42)
        #expect(await attempts.value == 4)
    }

    @Test func retryingThrowsOtherFailuresAtOnce() async throws {
        let attempts = Counter()
        await #expect(throws: Broken.self) {
            try await Backoff.adminRead.retrying(for: .seconds(60), if: { $0 is Busy }) {
                _ = await attempts.increment()
                throw Broken()
            }
        }
        #expect(await attempts.value == 1)
    }

    @Test func retryingGivesUpOncePatienceIsSpent() async throws {
        let attempts = Counter()
        let started = ContinuousClock.now
        await #expect(throws: Busy.self) {
            try await Backoff(initial: .milliseconds(20), maximum: .milliseconds(40)).retrying(for: .milliseconds(300), if: { $0 is Busy }) {
                _ = await attempts.increment()
                throw Busy()
            }
        }
        let elapsed = ContinuousClock.now - started
        #expect(elapsed < .seconds(2))  // bounded by the patience (plus scheduling slack on a busy machine)
        // It did retry (at most 300 ms / 10 ms of first delays; fewer when sleeps overrun on a busy machine).
        let count = await attempts.value
        #expect(count >= 2 && count <= 31)
    }

    actor Counter {
        private(set) var value = 0
        func increment() -> Int { value += 1; return value }
    }
}
