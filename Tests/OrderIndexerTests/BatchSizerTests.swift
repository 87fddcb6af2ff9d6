@testable import OrderIndexer
import ReadModel
import Testing

/// Claim sizes: small without a backlog, large under one, and backing off when the cluster
/// cannot finish what it is sent in time.
@Suite struct BatchSizerTests {
    let timedOut = BulkWriter.GaveUp(attempts: 3, lastAttempt: .timedOut)

    @Test func growsUnderABacklogAndShrinksWhenItIsGone() {
        var sizer = BatchSizer(normal: 500, backlog: 2000)
        #expect(sizer.next == 500)
        sizer.completed(500)
        #expect(sizer.next == 2000)
        sizer.completed(2000)
        #expect(sizer.next == 2000)
        sizer.completed(12)
        #expect(sizer.next == 500)
    }

    @Test func timeoutsHalveTheSizeDownToTheFloorAndFullBatchesDoubleItBack() {
        var sizer = BatchSizer(normal: 500, backlog: 2000, floor: 50)
        sizer.completed(500)
        var sizes: [Int] = []
        for _ in 0..<7 { sizer.failed(timedOut); sizes.append(sizer.next) }
        #expect(sizes == [1000, 500, 250, 125, 62, 50, 50])
        var growth: [Int] = []
        for _ in 0..<8 { sizer.completed(sizer.next); growth.append(sizer.next) }
        #expect(growth == [50, 100, 200, 400, 800, 1600, 2000, 2000])
    }

    @Test func withoutABacklogAfterFailuresItStaysWithinTheCeiling() {
        var sizer = BatchSizer(normal: 500, backlog: 2000, floor: 50)
        sizer.failed(timedOut)
        sizer.failed(timedOut)
        #expect(sizer.next == 125)
        sizer.completed(3)
        #expect(sizer.next == 125)
    }

    /// Refusals, error answers and lost connections say nothing about the size: it stays.
    @Test func otherFailuresLeaveTheSizeAlone() {
        var sizer = BatchSizer(normal: 500, backlog: 2000, floor: 50)
        sizer.completed(500)
        sizer.failed(BulkWriter.GaveUp(attempts: 12, lastAttempt: .errorAnswer))
        sizer.failed(CancellationError())
        #expect(sizer.next == 2000)
        sizer.failed(timedOut)
        #expect(sizer.next == 1000)
    }

    /// The largest request a worker may send (a customer fan-out's chunk) is the backlog size even
    /// without a backlog, and only timeouts make it smaller.
    @Test func theLargestRequestIsTheBacklogSizeUntilTimeoutsShrinkIt() {
        var sizer = BatchSizer(normal: 500, backlog: 5000, floor: 50)
        sizer.completed(3)
        #expect(sizer.next == 500 && sizer.ceiling == 5000)
        sizer.failed(timedOut)
        #expect(sizer.ceiling == 250)
        sizer.failed(BulkWriter.GaveUp(attempts: 12, lastAttempt: .errorAnswer))
        #expect(sizer.ceiling == 250)
    }
}
