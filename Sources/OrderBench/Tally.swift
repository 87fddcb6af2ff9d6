import Synchronization

/// A count shared between tasks: failures counted, or indices 0..<n handed out to workers.
final class Tally: Sendable {
    private let count = Atomic<Int>(0)
    var value: Int { count.load(ordering: .relaxed) }

    /// Adds one; the new count.
    @discardableResult func increment() -> Int { count.add(1, ordering: .relaxed).newValue }

    /// The next index below `limit`, or nil once all were handed out.
    func take(below limit: Int) -> Int? {
        let index = increment() - 1
        return index < limit ? index : nil
    }
}
