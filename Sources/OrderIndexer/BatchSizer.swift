/// How many events a worker claims next.
///
/// A full batch means a backlog: the next is larger, up to `backlog` (fewer, larger bulk requests
/// drain faster). A batch that failed (not acknowledged before the hand-back, or refused) halves
/// the ceiling, down to `floor`, and full batches then double it again one step at a time. Without
/// this, a saturated cluster is sent the same large requests it cannot finish before the
/// hand-back, works on abandoned ones, and completes none: seen in a soak, events retried 27 times
/// while nothing drained.
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

    mutating func failed() {
        ceiling = max(min(ceiling, next) / 2, floor)
        next = min(next, ceiling)
    }
}
