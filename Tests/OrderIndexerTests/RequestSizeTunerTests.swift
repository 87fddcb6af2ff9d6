@testable import OrderIndexer
import ReadModel
import Testing

/// Requests under a backlog grow (or shrink) while the cluster indexes faster for it, and only then.
@Suite struct RequestSizeTunerTests {
    /// Feeds `batches` full batches of `base` documents at the current level, each taking
    /// `seconds(documents)`; returns the level after each.
    func run(_ tuner: inout RequestSizeTuner, batches: Int, base: Int = 5000, seconds: (Int) -> Double) -> [Int] {
        (0..<batches).map { _ in
            let documents = tuner.scaled(base)
            tuner.record(documents: documents, seconds: seconds(documents))
            return tuner.level
        }
    }

    /// osmem-server late in a soak: a request of updates costs about the same whatever its size.
    @Test func aClusterThatChargesPerRequestGetsTheLargestRequests() {
        var tuner = RequestSizeTuner(lowest: -3, highest: 2)
        let levels = run(&tuner, batches: 12) { _ in 30 }
        #expect(levels == [0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2])
        #expect(tuner.scaled(5000) == 20_000)
    }

    /// A fixed cost per request and a cost per document, where the starting size already makes the
    /// fixed cost small: twice the size is not 1.3x as fast, half the size is slower; the size stays,
    /// and is tried again after a hold.
    @Test func aSizeWhereNeitherDirectionHelpsStays() {
        var tuner = RequestSizeTuner(lowest: -3, highest: 2)
        let levels = run(&tuner, batches: 10 + RequestSizeTuner.holdBatches + 1) { 2 + Double($0) / 1000 }
        #expect(Array(levels.prefix(10)) == [0, 0, 1, 1, 1, 0, -1, -1, -1, 0])
        #expect(levels.dropFirst(10).prefix(RequestSizeTuner.holdBatches).allSatisfy { $0 == 0 })
        #expect(levels.last == 1, "tried again after the hold")
    }

    /// osmem-server indexing new documents: fastest at about 1000 to a request. From 5000 the
    /// tuner goes down while that is at least as fast, and stops above the size that is slower.
    @Test func aClusterThatPrefersSmallerRequestsGetsThem() {
        var tuner = RequestSizeTuner(lowest: -3, highest: 2)
        let ratePerSize: [Int: Double] = [10_000: 500, 5000: 510, 2500: 600, 1250: 630, 625: 450]
        let levels = run(&tuner, batches: 18) { Double($0) / ratePerSize[$0]! }
        #expect(levels == [0, 0, 1, 1, 1, 0, -1, -1, -1, -1, -2, -2, -2, -2, -3, -3, -3, -2])
        #expect(tuner.scaled(5000) == 1250)
    }

    /// A gain below `gain` (here 1.2x for twice the size) is a tie, and a tie keeps the smaller size.
    @Test func aSmallGainIsATie() {
        var tuner = RequestSizeTuner(lowest: -3, highest: 2)
        let secondsPerSize: [Int: Double] = [5000: 10, 10_000: 10 * 2 / 1.2, 2500: 6]
        let levels = run(&tuner, batches: 10) { secondsPerSize[$0]! }
        #expect(levels == [0, 0, 1, 1, 1, 0, -1, -1, -1, 0])
    }

    /// The median judges a size: one slow request among fast ones does not decide.
    @Test func oneSlowBatchDoesNotDecide() {
        var tuner = RequestSizeTuner(highest: 1)
        var slowOnce = true
        let levels = run(&tuner, batches: 6) { documents in
            if documents == 10_000, slowOnce { slowOnce = false; return 100 }
            return 30
        }
        #expect(levels == [0, 0, 1, 1, 1, 1])
    }

    @Test func aTimeoutHalvesAGrownSizeAndHoldsIt() {
        var tuner = RequestSizeTuner(lowest: -3, highest: 2)
        _ = run(&tuner, batches: 9) { _ in 30 }
        #expect(tuner.level == 2)
        tuner.timedOut()
        #expect(tuner.level == 1)
        let levels = run(&tuner, batches: RequestSizeTuner.holdBatches) { _ in 30 }
        #expect(levels.allSatisfy { $0 == 1 })
    }

    /// A timeout while a larger size is tried goes back; at the starting size it is `BatchSizer`'s
    /// ceiling that shrinks, not the tuner's level.
    @Test func aTimeoutWhileTryingGoesBackToTheSizeBefore() {
        var tuner = RequestSizeTuner(lowest: -3, highest: 2)
        _ = run(&tuner, batches: 3) { _ in 30 }
        #expect(tuner.level == 1)
        tuner.timedOut()
        #expect(tuner.level == 0)
        tuner.timedOut()
        #expect(tuner.level == 0)
    }

    /// A backlog that ends while a size is being tried leaves the size it had before the try.
    @Test func aBacklogThatEndsWhileTryingKeepsTheSizeBefore() {
        var tuner = RequestSizeTuner(lowest: -3, highest: 2)
        _ = run(&tuner, batches: 3) { _ in 30 }
        #expect(tuner.level == 1)
        tuner.backlogEnded()
        #expect(tuner.level == 0)
        // The next backlog measures afresh: three batches before the next try.
        #expect(run(&tuner, batches: 3) { _ in 30 } == [0, 0, 1])
    }

    @Test func aTunerWithoutRoomNeverMoves() {
        var tuner = RequestSizeTuner(highest: 0)
        #expect(run(&tuner, batches: 40) { _ in 30 }.allSatisfy { $0 == 0 })
    }
}

/// The sizer hands the tuner's size to claims, rounds, fan-out chunks and request bytes alike.
@Suite struct BatchSizerGrowthTests {
    @Test func requestsGrowWithinTheConfiguredBytesAndTheLargestBatchAndShrinkToAnEighthAboveNormal() {
        #expect(BatchSizer.doublings(from: 5 << 20, within: 20 << 20) == 2)
        #expect(BatchSizer.doublings(from: 5 << 20, within: (20 << 20) - 1) == 1)
        #expect(BatchSizer.doublings(from: 5 << 20, within: 5 << 20) == 0)
        let roomy = BatchSizer(normal: 500, backlog: 5000, maxRequestBytes: 50 << 20).tuner
        #expect(roomy.highest == 2 && roomy.lowest == -3, "20,000 events at most; 625 at least")
        #expect(BatchSizer(normal: 2000, backlog: 5000).tuner.lowest == -1, "never below the normal batch")
        #expect(BatchSizer(normal: 500, backlog: 5000, maxRequestBytes: 1 << 20).requests.bytes == 1 << 20, "starts within the limit")
    }

    @Test func fullBatchesAtAClusterThatChargesPerRequestGrowEverything() {
        var sizer = BatchSizer(normal: 500, backlog: 5000, fanOutChunk: 5000, requestBytes: 5 << 20, maxRequestBytes: 20 << 20)
        var claims: [Int] = []
        for _ in 0..<14 {
            claims.append(sizer.next)
            sizer.completed(sizer.next, documents: sizer.next, duration: .seconds(30))
        }
        #expect(claims == [500, 5000, 5000, 5000, 10_000, 10_000, 10_000, 10_000, 20_000, 20_000, 20_000, 20_000, 20_000, 20_000])
        #expect(sizer.requests == RequestSize(documents: 20_000, fanOutChunk: 20_000, bytes: 20 << 20))

        // A timeout halves the grown size, not the ceiling under it as well.
        sizer.failed(BulkWriter.GaveUp(attempts: 3, lastAttempt: .timedOut))
        #expect(sizer.next == 10_000)
        #expect(sizer.requests == RequestSize(documents: 10_000, fanOutChunk: 10_000, bytes: 10 << 20))

        // The backlog ends: small batches, the grown size kept for the next backlog.
        sizer.completed(12)
        #expect(sizer.next == 500)
        #expect(sizer.tuner.level == 1)
    }

    /// Batches smaller than the backlog size (the first of a backlog, or growing back after timeouts)
    /// say nothing about it.
    @Test func onlyFullBatchesAtTheBacklogSizeAreMeasured() {
        var sizer = BatchSizer(normal: 500, backlog: 5000, requestBytes: 5 << 20, maxRequestBytes: 20 << 20)
        let untouched = sizer.tuner
        sizer.completed(500, documents: 500, duration: .seconds(30))
        #expect(sizer.tuner == untouched)
        sizer.completed(5000, documents: 5000, duration: .seconds(30))
        #expect(sizer.tuner != untouched)
    }

    /// Several indexers share a backlog, so a claim at the backlog size often finds fewer events than
    /// it asked for: at least half full, the backlog size stays and the batch is measured; less than
    /// half ends the backlog (a whole request for a tenth of the documents would cost as much).
    @Test func batchesAtLeastHalfFullStillMeanABacklog() {
        var sizer = BatchSizer(normal: 500, backlog: 5000, requestBytes: 5 << 20, maxRequestBytes: 20 << 20)
        sizer.completed(500)
        for claimed in [5000, 2600, 4100] {
            #expect(sizer.next == 5000)
            sizer.completed(claimed, documents: claimed, duration: .seconds(30))
        }
        #expect(sizer.next == 10_000, "three batches at the backlog size: twice the size is tried")
        sizer.completed(4000, documents: 4000, duration: .seconds(30))
        #expect(sizer.next == 500, "less than half of the tried size: the backlog ended")
        #expect(sizer.tuner.level == 0)
    }
}
