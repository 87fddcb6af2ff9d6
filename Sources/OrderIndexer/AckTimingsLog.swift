import Foundation
import Synchronization

/// A measurement aid for `scripts/bench lag`: with `INDEXER_ACK_TIMINGS` set to a file, the
/// indexer appends one line per acknowledged event, `<commit µs> <acknowledged µs> <done µs>`
/// (epoch microseconds; acknowledged: the cluster answered for its documents; done: the event
/// left the outbox), so the benchmark can compute exact percentiles from every event rather
/// than read bucket bounds off the Prometheus histogram. Off (and free) when unset.
public final class AckTimingsLog: Sendable {
    private let file: Mutex<FileHandle>

    public init?(path: String?) {
        guard let path, !path.isEmpty else { return nil }
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: path) else { return nil }
        handle.seekToEndOfFile()
        file = Mutex(handle)
    }

    /// One write per batch.
    func append(commitMicroseconds: [Int64], acknowledgedMicroseconds: Int64, doneMicroseconds: Int64) {
        var text = ""
        text.reserveCapacity(commitMicroseconds.count * 51)
        for commit in commitMicroseconds { text += "\(commit) \(acknowledgedMicroseconds) \(doneMicroseconds)\n" }
        file.withLock { $0.write(Data(text.utf8)) }
    }
}
