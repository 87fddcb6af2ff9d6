@testable import OrderIndexer
import ReadModel
import Testing

/// Requests under a backlog grow while the cluster indexes faster for it, and only then.
@Suite struct RequestSizeTunerTests {
    /// Feeds `batches` full batches of `base` documents times the current scale, each taking
    /// `seconds(documents)`; returns the scale after each.
    func run(_ tuner: inout RequestSizeTuner, batches: Int, base: Int = 5000, seconds: (Int) -> Double) -> [Int] {
        (0..<batches).map { _ in
            let documents = base * tuner.scale
            tuner.record(documents: documents, seconds: seconds(documents))
            return tuner.scale
        }
    }

    /// osmem-server late in a soak: a request of updates costs about the same whatever its size.
    @Test func aClusterThatChargesPerRequestGetsTheLargestRequests() {
        var tuner = RequestSizeTuner(maxScale: 4)
        let scales = run(&tuner, batches: 12) { _ in 30 }
        #expect(scales == [1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 4, 4])
    }

    /// Elasticsearch indexing inserts: about the same cost per document from a few MB up. Twice
    /// the size is tried, proves no faster and is given up; tried again only after a hold.
    @Test func aClusterThatChargesPerDocumentKeepsTheStartingSize() {
        var tuner = RequestSizeTuner(maxScale: 4)
        let scales = run(&tuner, batches: 6 + RequestSizeTuner.holdBatches + 1) { Double($0) / 1000 * 1.1 }
        #expect(Array(scales.prefix(6)) == [1, 1, 2, 2, 2, 1])
        #expect(scales.dropFirst(6).prefix(RequestSizeTuner.holdBatches).allSatisfy { $0 == 1 })
        #expect(scales.last == 2, "tried again after the hold")
    }

    /// A gain below `gain` (here 1.2x for twice the size) is a tie, and a tie keeps the smaller size.
    @Test func aSmallGainIsATie() {
        var tuner = RequestSizeTuner(maxScale: 4)
        let scales = run(&tuner, batches: 6) { documents in documents == 5000 ? 10 : 10 * 2 / 1.2 }
        #expect(scales == [1, 1, 2, 2, 2, 1])
    }

    /// The median judges a size: one slow request among fast ones does not decide.
    @Test func oneSlowBatchDoesNotDecide() {
        var tuner = RequestSizeTuner(maxScale: 2)
        var slowOnce = true
        let scales = run(&tuner, batches: 6) { documents in
            if documents == 10_000, slowOnce { slowOnce = false; return 100 }
            return 30
        }
        #expect(scales == [1, 1, 2, 2, 2, 2])
    }

    @Test func aTimeoutHalvesTheSizeAndHoldsIt() {
        var tuner = RequestSizeTuner(maxScale: 4)
        _ = run(&tuner, batches: 9) { _ in 30 }
        #expect(tuner.scale == 4)
        tuner.timedOut()
        #expect(tuner.scale == 2)
        let scales = run(&tuner, batches: RequestSizeTuner.holdBatches) { _ in 30 }
        #expect(scales.allSatisfy { $0 == 2 })
    }

    @Test func aTimeoutWhileTryingGoesBackToTheSizeBefore() {
        var tuner = RequestSizeTuner(maxScale: 4)
        _ = run(&tuner, batches: 3) { _ in 30 }
        #expect(tuner.scale == 2)
        tuner.timedOut()
        #expect(tuner.scale == 1)
        tuner.timedOut()
        #expect(tuner.scale == 1)
    }

    /// A backlog that ends while a size is being tried leaves the size it had before the try.
    @Test func aBacklogThatEndsWhileTryingKeepsTheSizeBefore() {
        var tuner = RequestSizeTuner(maxScale: 4)
        _ = run(&tuner, batches: 3) { _ in 30 }
        #expect(tuner.scale == 2)
        tuner.backlogEnded()
        #expect(tuner.scale == 1)
        // The next backlog measures afresh: three batches before the next try.
        #expect(run(&tuner, batches: 3) { _ in 30 } == [1, 1, 2])
    }

    @Test func aTunerWithoutRoomNeverGrows() {
        var tuner = RequestSizeTuner(maxScale: 1)
        #expect(run(&tuner, batches: 10) { _ in 30 }.allSatisfy { $0 == 1 })
    }
}

/// The sizer hands the tuner's size to claims, rounds, fan-out chunks and request bytes alike.
@Suite struct BatchSizerGrowthTests {
    @Test func requestsGrowWithinTheConfiguredBytesAndTheLargestBatch() {
        #expect(BatchSizer.largestScale(from: 5 << 20, to: 20 << 20) == 4)
        #expect(BatchSizer.largestScale(from: 5 << 20, to: (20 << 20) - 1) == 2)
        #expect(BatchSizer.largestScale(from: 5 << 20, to: 5 << 20) == 1)
        #expect(BatchSizer(normal: 500, backlog: 5000, maxRequestBytes: 50 << 20).tuner.maxScale == 4, "20,000 events at most")
        #expect(BatchSizer(normal: 500, backlog: 5000, maxRequestBytes: 1 << 20).requests.bytes == 1 << 20, "starts within the limit")
    }

    @Test func fullBatchesAtAClusterThatChargesPerRequestGrowEverything() {
        var sizer = BatchSizer(normal: 500, backlog: 5000, requestBytes: 5 << 20, maxRequestBytes: 20 << 20)
        var claims: [Int] = []
        for _ in 0..<14 {
            claims.append(sizer.next)
            sizer.completed(sizer.next, documents: sizer.next, duration: .seconds(30))
        }
        #expect(claims == [500, 5000, 5000, 5000, 10_000, 10_000, 10_000, 10_000, 20_000, 20_000, 20_000, 20_000, 20_000, 20_000])
        #expect(sizer.requests == RequestSize(documents: 20_000, bytes: 20 << 20, scale: 4))

        // A timeout halves the grown size, not the ceiling under it as well.
        sizer.failed(BulkWriter.GaveUp(attempts: 3, lastAttempt: .timedOut))
        #expect(sizer.next == 10_000)
        #expect(sizer.requests == RequestSize(documents: 10_000, bytes: 10 << 20, scale: 2))

        // The backlog ends: small batches, the grown size kept for the next backlog.
        sizer.completed(12)
        #expect(sizer.next == 500)
        #expect(sizer.requests.scale == 2)
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
}
