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
        for backoff in [Backoff.bulk, .transaction, .batch] {
            #expect(backoff.initial < backoff.maximum)
            #expect(backoff.delay(attempt: 1000) <= backoff.maximum)
        }
    }
}
