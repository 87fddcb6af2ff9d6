import RetryPolicy
import Testing

@Suite struct AdaptiveTimeoutTests {
    let policy = AdaptiveTimeout.Policy(floor: .seconds(30), ceiling: .seconds(120))

    @Test func startsAtTheFloorAndQuickAnswersKeepItThere() {
        let timeout = AdaptiveTimeout(policy)
        #expect(timeout.current == .seconds(30))
        for _ in 0..<20 { timeout.answered(after: .milliseconds(80)) }
        #expect(timeout.current == .seconds(30))
    }

    @Test func risesWithTheServersLatencyAtOnce() {
        let timeout = AdaptiveTimeout(policy)
        timeout.answered(after: .seconds(15))
        #expect(timeout.current == .seconds(45))  // three times the slowest recent answer
        timeout.answered(after: .seconds(25))
        #expect(timeout.current == .seconds(75))
        timeout.answered(after: .seconds(60))
        #expect(timeout.current == .seconds(120))  // never beyond the ceiling
    }

    @Test func fallsBackSlowlyOnceTheServerIsQuickAgain() {
        let timeout = AdaptiveTimeout(policy)
        timeout.answered(after: .seconds(40))
        #expect(timeout.current == .seconds(120))
        timeout.answered(after: .milliseconds(50))
        #expect(timeout.current == .seconds(111))  // a tenth of the way to the floor per answer
        for _ in 0..<200 { timeout.answered(after: .milliseconds(50)) }
        #expect(timeout.current >= .seconds(30) && timeout.current < .seconds(31))
    }

    @Test func aTimeoutDoublesItWhileTheServerIsStillAnswering() {
        let timeout = AdaptiveTimeout(policy)
        timeout.timedOut()
        #expect(timeout.current == .seconds(60))
        timeout.answered(after: .seconds(1))
        timeout.timedOut()
        #expect(timeout.current == .seconds(114))  // 60 decayed to 57, then doubled
        timeout.answered(after: .seconds(1))
        timeout.timedOut()
        #expect(timeout.current == .seconds(120))
    }

    /// A server that answers nothing at all is not waited on longer and longer: with work in
    /// hand, the waiter must give it back in bounded time.
    @Test func aServerThatStopsAnsweringRaisesItOnlyOnce() {
        let timeout = AdaptiveTimeout(policy)
        for _ in 0..<10 { timeout.timedOut() }
        #expect(timeout.current == .seconds(60))
    }

    /// A process whose own requests all wait in a shared server's queue hears nothing between its
    /// timeouts; a probe the server answers says it is busy, not gone, so the wait keeps growing.
    @Test func aProbeTheServerAnswersCountsAsBusy() {
        let timeout = AdaptiveTimeout(policy)
        #expect(timeout.timedOut())
        #expect(!timeout.answeredSinceTimeout)
        #expect(timeout.timedOut(answering: true))
        #expect(timeout.current == .seconds(120))
        #expect(!timeout.timedOut(answering: false))
        #expect(timeout.current == .seconds(120))
        timeout.answered(after: .seconds(1))
        #expect(timeout.answeredSinceTimeout)
    }

    /// Slow is what made the timeout rise: an answer later than a third of the floor.
    @Test func anAnswerIsSlowWhenTheFloorDoesNotAllowForIt() {
        let timeout = AdaptiveTimeout(policy)
        #expect(!timeout.answered(after: .seconds(2)))
        #expect(!timeout.answered(after: .seconds(10)))
        #expect(timeout.answered(after: .milliseconds(10_001)))
    }

    /// A timeout says "busy" when the server answered since the previous one (or it is the first):
    /// then it is most likely still doing the abandoned request.
    @Test func aTimeoutIsBusyOnlyWhileTheServerStillAnswers() {
        let timeout = AdaptiveTimeout(policy)
        #expect(timeout.timedOut())
        #expect(!timeout.timedOut())
        timeout.answered(after: .seconds(1))
        #expect(timeout.timedOut())
    }

    @Test func aCeilingBelowTheFloorIsTheFloor() {
        let timeout = AdaptiveTimeout(.init(floor: .seconds(10), ceiling: .seconds(1)))
        timeout.timedOut()
        #expect(timeout.current == .seconds(10))
    }
}
