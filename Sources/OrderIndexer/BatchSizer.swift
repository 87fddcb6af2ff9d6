import LibPQClient
import ReadModel

/// How many events a worker claims next, and how large its bulk requests may be.
///
/// A full batch means a backlog: the next is larger, up to `backlog` (fewer, larger bulk requests
/// drain faster), and stays there while batches come back at least half full. A batch handed back
/// because its request timed out halves the ceiling, down to `floor`, and full batches then double
/// it again one step at a time: a cluster that cannot finish
/// a request of that size even in the longest timeout (`AdaptiveTimeout`) gets smaller ones. Other
/// failures leave the size alone: a 429, a 5xx or no connection says nothing about the size, and
/// each halving costs several full batches to undo (a soak's fault storms had shrunk every
/// worker's batches to 50–200 events under a 60,000-event backlog).
///
/// `backlog`, the fan-out chunk and the request's bytes start at the configured sizes and are
/// doubled or halved together while the cluster indexes faster for it (`RequestSizeTuner`), up
/// to `maxRequestBytes` and `BulkSizing.largestBatch` events, down to an eighth but never below
/// `normal`.
struct BatchSizer: Sendable, Equatable {
    let normal: Int
    let floor: Int
    private let startingBacklog: Int
    /// The backlog size as configured, which may be smaller than `normal`: a round's documents.
    private let configuredBacklog: Int
    private let startingFanOutChunk: Int
    private let startingRequestBytes: Int
    private let maxRequestBytes: Int
    private(set) var tuner: RequestSizeTuner
    private(set) var next: Int
    private(set) var ceiling: Int

    /// Halvings of the starting size a tuner may try.
    static let mostHalvings = 3

    init(normal: Int, backlog: Int, floor: Int = 50, fanOutChunk: Int? = nil, requestBytes: Int = BulkSizing.maxRequestBytes,
         maxRequestBytes: Int? = nil) {
        self.normal = normal
        self.floor = min(floor, normal)
        startingBacklog = max(backlog, normal)
        configuredBacklog = max(1, backlog)
        startingFanOutChunk = max(1, fanOutChunk ?? backlog)
        self.maxRequestBytes = maxRequestBytes ?? requestBytes
        startingRequestBytes = min(requestBytes, self.maxRequestBytes)
        let highest = min(Self.doublings(from: startingRequestBytes, within: self.maxRequestBytes),
                          Self.doublings(from: startingBacklog, within: max(BulkSizing.largestBatch, startingBacklog)))
        let lowest = -min(Self.mostHalvings, Self.doublings(from: normal, within: startingBacklog))
        tuner = RequestSizeTuner(lowest: lowest, highest: highest)
        next = normal
        ceiling = startingBacklog
    }

    /// How many times `start` may be doubled and stay within `limit`.
    static func doublings(from start: Int, within limit: Int) -> Int {
        var count = 0
        while max(1, start) << (count + 1) <= limit { count += 1 }
        return count
    }

    /// Events per batch under a backlog.
    var backlog: Int { max(normal, tuner.scaled(startingBacklog)) }

    /// What the next batch's requests may hold: at most a backlog batch's documents in a round of
    /// small customers' changes and the configured fan-out chunk in a customer's, both fewer after
    /// timeouts (`ceiling`), and `bytes` in each request.
    var requests: RequestSize {
        RequestSize(documents: min(ceiling, tuner.scaled(configuredBacklog)), fanOutChunk: min(ceiling, tuner.scaled(startingFanOutChunk)),
                    bytes: min(tuner.scaled(startingRequestBytes), maxRequestBytes))
    }

    /// A batch claimed `processed` events and indexed `documents` (its customers' orders included) in `duration`.
    mutating func completed(_ processed: Int, documents: Int = 0, duration: Duration = .zero) {
        // At the backlog size, a batch at least half full still means a backlog: several indexers
        // share one, and one claim finds fewer events while others hold theirs. Dropping to `normal`
        // for it would cost a whole request for a tenth of the documents.
        let atBacklog = next == backlog && processed * 2 >= next
        if processed >= next || atBacklog {
            if atBacklog {
                // Only batches at the backlog size measure the size: smaller ones are still growing.
                // `next == backlog` means no timeout had lowered the ceiling, so it follows the tuner.
                tuner.record(documents: documents, seconds: duration.seconds)
                ceiling = backlog
            }
            next = ceiling
            ceiling = min(ceiling * 2, backlog)
        } else {
            if next == backlog { tuner.backlogEnded() }
            ceiling = min(ceiling, backlog)
            next = min(normal, ceiling)
        }
    }

    /// A batch failed with `error` and was handed back.
    mutating func failed(_ error: any Error) {
        guard (error as? BulkWriter.GaveUp)?.timedOut == true else { return }
        let level = tuner.level
        tuner.timedOut()
        if tuner.level < level {
            ceiling = min(ceiling, backlog)  // the grown size is what halved
        } else {
            ceiling = max(min(ceiling, next) / 2, floor)
        }
        next = min(next, ceiling)
    }
}

/// The limits of one batch's bulk requests (`BatchSizer.requests`).
public struct RequestSize: Sendable, Equatable {
    /// Documents of a round of small customers' changes.
    public var documents: Int
    /// Orders of a customer fan-out's chunk.
    public var fanOutChunk: Int
    /// Bytes of one request's body.
    public var bytes: Int

    public init(documents: Int, fanOutChunk: Int, bytes: Int) {
        self.documents = documents
        self.fanOutChunk = fanOutChunk
        self.bytes = bytes
    }
}
