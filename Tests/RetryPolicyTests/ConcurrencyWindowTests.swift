import RetryPolicy
import Testing

@Suite struct ConcurrencyWindowTests {
    @Test func startsAtItsMaximumAndQuickAnswersKeepItThere() {
        let window = ConcurrencyWindow(maximum: 4)
        #expect(window.limit == 4)
        for _ in 0..<20 { window.answered(sentAt: .now, slow: false) }
        #expect(window.limit == 4)
    }

    @Test func aTimeoutOrASlowAnswerHalvesIt() {
        let window = ConcurrencyWindow(maximum: 8)
        window.timedOut(sentAt: .now)
        #expect(window.limit == 4)
        window.answered(sentAt: .now, slow: true)
        #expect(window.limit == 2)
        window.timedOut(sentAt: .now)
        window.timedOut(sentAt: .now)
        #expect(window.limit == 1)  // never below one: the work must go on
    }

    /// Requests sent before a decrease took effect report the old load: they do not halve it again.
    @Test func itHalvesOncePerRound() {
        let window = ConcurrencyWindow(maximum: 8)
        let sentTogether = ContinuousClock.now
        window.timedOut(sentAt: sentTogether)
        window.timedOut(sentAt: sentTogether)
        window.answered(sentAt: sentTogether, slow: true)
        #expect(window.limit == 4)
        window.timedOut(sentAt: .now)
        #expect(window.limit == 2)
    }

    /// One more request in flight per `limit` quick answers in a row; a slow one starts the count again.
    @Test func quickAnswersRaiseItOneStepAtATime() {
        let window = ConcurrencyWindow(maximum: 4)
        let early = ContinuousClock.now
        window.timedOut(sentAt: .now)
        window.timedOut(sentAt: .now)
        #expect(window.limit == 1)
        window.answered(sentAt: .now, slow: false)
        #expect(window.limit == 2)
        window.answered(sentAt: .now, slow: false)
        #expect(window.limit == 2)
        window.answered(sentAt: .now, slow: false)
        #expect(window.limit == 3)
        for _ in 0..<2 { window.answered(sentAt: .now, slow: false) }
        window.answered(sentAt: early, slow: true)  // an old request: no decrease, but the count restarts
        for _ in 0..<2 { window.answered(sentAt: .now, slow: false) }
        #expect(window.limit == 3)
        window.answered(sentAt: .now, slow: false)
        #expect(window.limit == 4)
        for _ in 0..<10 { window.answered(sentAt: .now, slow: false) }
        #expect(window.limit == 4)
    }
}
