/// How large a worker makes its requests under a backlog, against their starting size:
/// Elasticsearch's own method for a bulk request's size, run while the indexer works.
///
/// Elasticsearch's guidance ("Tune for indexing speed") is to double the documents per bulk
/// request while the indexing speed keeps rising, to stop where it levels off (erring towards
/// the smaller size in a tie), and not to go beyond a couple of tens of megabytes. The right
/// size depends on the cluster and on what the requests do, so no default fits every cluster:
/// osmem-server, the development server, indexes new documents fastest at about 1000 to a
/// request, but charges a request of updates spread over a large index about the same time
/// whatever its size (`BulkSizing`), so there only larger requests keep up.
///
/// Each worker measures the documents per second of its own batches at the backlog size (at least
/// half full, `BatchSizer`) at its current size, `level` doublings (or halvings, when negative)
/// from the starting size. After `samples` of them it tries twice the size, keeps it when the
/// median of `samples` batches indexed at least `gain` times as fast, and goes on upwards;
/// otherwise it tries half the size, kept when at least as fast (a tie goes to the smaller size),
/// and goes on downwards. When neither direction helps it stays, and tries again after
/// `holdBatches` such batches: a growing index changes the answer. A request that timed out
/// undoes a doubling at once: the cluster could not finish it (`timedOut`).
///
/// A pure value: the worker tells it what happened; it does no I/O and reads no clock.
struct RequestSizeTuner: Sendable, Equatable {
    /// The range of `level`: sizes from the starting size halved `-lowest` times to doubled `highest` times.
    let lowest: Int
    let highest: Int
    private(set) var level = 0
    /// The level to go back to while another is tried.
    private var tried: Int?
    /// The direction of the next try: 1 larger, -1 smaller.
    private var direction = 1
    /// Whether this search has moved (then a failed try ends it: the other way is where it came
    /// from) or has tried the other direction already.
    private var moved = false
    private var turned = false
    /// Documents per second of the latest batches at the backlog size at the current level, and at the tried one.
    private var rates: [Double] = []
    private var triedRates: [Double] = []
    /// Batches at the backlog size still to run before the next try.
    private var hold = 0

    /// Batches measured at a size before it is judged: the median of a few, as single requests vary.
    static let samples = 3
    /// How much faster twice the size must index to be kept.
    static let gain = 1.3
    /// Batches at the backlog size between a search that found nothing better and the next.
    static let holdBatches = 20

    init(lowest: Int = 0, highest: Int) {
        self.lowest = min(0, lowest)
        self.highest = max(0, highest)
    }

    /// `base` at the current level: doubled or halved `level` times (at least 1).
    func scaled(_ base: Int) -> Int {
        level >= 0 ? base << level : max(1, base >> -level)
    }

    /// A batch at the backlog size (at least half full) indexed `documents` in `seconds` (claim to acknowledgement).
    mutating func record(documents: Int, seconds: Double) {
        guard documents > 0, seconds > 0 else { return }
        let rate = Double(documents) / seconds
        if tried != nil {
            triedRates = Self.latest(triedRates, rate)
            if triedRates.count == Self.samples { judgeTry() }
            return
        }
        rates = Self.latest(rates, rate)
        if hold > 0 { hold -= 1; return }
        if rates.count == Self.samples { startTry() }
    }

    private mutating func startTry() {
        if !allows(level + direction) {
            guard !moved, !turned, allows(level - direction) else { return endSearch() }
            direction = -direction
            turned = true
        }
        tried = level
        level += direction
    }

    private mutating func judgeTry() {
        guard let previous = tried else { return }
        let faster = direction > 0 ? Self.median(triedRates) >= Self.gain * Self.median(rates) : Self.median(triedRates) >= Self.median(rates)
        tried = nil
        if faster {
            rates = triedRates
            moved = true
        } else {
            level = previous  // its rates still stand
            if moved || turned { endSearch() } else { direction = -direction; turned = true }
        }
        triedRates = []
    }

    private mutating func endSearch() {
        hold = Self.holdBatches
        direction = 1
        moved = false
        turned = false
    }

    private func allows(_ level: Int) -> Bool { (lowest...highest).contains(level) }

    /// A request timed out: half a grown size (or back from a larger one being tried), and no try for
    /// a while. A size at or below the start is left to `BatchSizer`, whose ceiling halves and grows back.
    mutating func timedOut() {
        level = tried.map { min($0, level) } ?? (level > 0 ? level - 1 : level)
        tried = nil
        rates = []
        triedRates = []
        endSearch()
    }

    /// The backlog ended: the rates measured belong to a state of the cluster that may not return.
    mutating func backlogEnded() {
        if let previous = tried { level = previous }
        tried = nil
        rates = []
        triedRates = []
        direction = 1
        moved = false
        turned = false
    }

    private static func latest(_ rates: [Double], _ rate: Double) -> [Double] {
        Array((rates + [rate]).suffix(samples))
    }

    private static func median(_ rates: [Double]) -> Double {
        rates.sorted()[rates.count / 2]
    }
}
