/// How much larger than its starting size a worker makes its requests under a backlog:
/// Elasticsearch's own method for a bulk request's size, run while the indexer works.
///
/// Elasticsearch's guidance ("Tune for indexing speed") is to double the documents per bulk
/// request while the indexing speed keeps rising, to stop where it levels off (erring towards
/// the smaller size in a tie), and not to go beyond a couple of tens of megabytes. The right
/// size depends on the cluster and on what the requests do, so no default fits every cluster:
/// on Elasticsearch a request of inserts costs about the same per document from a few MB up,
/// while osmem-server, the development server, charges a request of updates spread over a large
/// index about the same time whatever its size (`BulkSizing`), so there only larger requests
/// keep up. Each worker measures the documents per second of its own full backlog batches at
/// its current size (`scale` times the starting size), tries twice the size, and keeps it only
/// when that indexed at least `gain` times as fast; otherwise it goes back and tries again
/// after `holdBatches` full batches (a growing index changes the answer). A request that timed
/// out halves the size at once: the cluster could not finish it.
///
/// A pure value: the worker tells it what happened; it does no I/O and reads no clock.
struct RequestSizeTuner: Sendable, Equatable {
    /// The largest scale: `maxScale` times the starting size stays within `INDEXER_MAX_BULK_BYTES`.
    let maxScale: Int
    private(set) var scale = 1
    /// The scale to go back to when the current one is being tried and proves no faster.
    private var tried: Int?
    /// Documents per second of the latest full backlog batches at `scale`, and at `tried` while trying.
    private var rates: [Double] = []
    private var triedRates: [Double] = []
    /// Full backlog batches still to run at `scale` before a larger size is tried again.
    private var hold = 0

    /// Batches measured at a size before it is judged: a median of a few, as single requests vary.
    static let samples = 3
    /// How much faster twice the size must index to be kept.
    static let gain = 1.3
    /// Full backlog batches between a size that proved no faster and the next try.
    static let holdBatches = 20

    init(maxScale: Int) {
        self.maxScale = max(1, maxScale)
    }

    /// A full batch at the backlog size indexed `documents` in `seconds` (claim to acknowledgement).
    mutating func record(documents: Int, seconds: Double) {
        guard documents > 0, seconds > 0 else { return }
        let rate = Double(documents) / seconds
        if let previous = tried {
            triedRates = Self.latest(triedRates, rate)
            guard triedRates.count == Self.samples else { return }
            if Self.median(triedRates) < Self.gain * Self.median(rates) {
                scale = previous  // no faster: back to the smaller size, whose rates still stand
                hold = Self.holdBatches
            } else {
                rates = triedRates
            }
            tried = nil
            triedRates = []
            return
        }
        rates = Self.latest(rates, rate)
        if hold > 0 { hold -= 1; return }
        guard rates.count == Self.samples, scale < maxScale else { return }
        tried = scale
        scale *= 2
    }

    /// A request timed out: half the size, and no larger one for a while.
    mutating func timedOut() {
        scale = tried ?? max(1, scale / 2)
        tried = nil
        rates = []
        triedRates = []
        hold = Self.holdBatches
    }

    /// The backlog ended: the rates measured belong to a state of the cluster that may not return.
    mutating func backlogEnded() {
        if let previous = tried { scale = previous }
        tried = nil
        rates = []
        triedRates = []
    }

    private static func latest(_ rates: [Double], _ rate: Double) -> [Double] {
        Array((rates + [rate]).suffix(samples))
    }

    private static func median(_ rates: [Double]) -> Double {
        rates.sorted()[rates.count / 2]
    }
}
