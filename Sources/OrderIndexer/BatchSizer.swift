import ReadModel

/// How many events a worker claims next.
///
/// A full batch means a backlog: the next is larger, up to `backlog` (fewer, larger bulk requests
/// drain faster). A batch handed back because its request timed out halves the ceiling, down to
/// `floor`, and full batches then double it again one step at a time: a cluster that cannot finish
/// a request of that size even in the longest timeout (`AdaptiveTimeout`) gets smaller ones. Other
/// failures leave the size alone: a 429, a 5xx or no connection says nothing about the size, and
/// each halving costs several full batches to undo (a soak's fault storms had shrunk every
/// worker's batches to 50–200 events under a 60,000-event backlog).
struct BatchSizer: Sendable, Equatable {
    let normal: Int
    let backlog: Int
    let floor: Int
    private(set) var next: Int
    private(set) var ceiling: Int

    init(normal: Int, backlog: Int, floor: Int = 50) {
        self.normal = normal
        self.backlog = max(backlog, normal)
        self.floor = min(floor, normal)
        next = normal
        ceiling = self.backlog
    }

    mutating func completed(_ processed: Int) {
        if processed >= next {
            next = ceiling
            ceiling = min(ceiling * 2, backlog)
        } else {
            next = min(normal, ceiling)
        }
    }

    /// A batch failed with `error` and was handed back.
    mutating func failed(_ error: any Error) {
        guard (error as? BulkWriter.GaveUp)?.timedOut == true else { return }
        shrink()
    }

    private mutating func shrink() {
        ceiling = max(min(ceiling, next) / 2, floor)
        next = min(next, ceiling)
    }
}
