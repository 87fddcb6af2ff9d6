import LibPQClient
import ReadModel

/// How many events a worker claims next, and how large its bulk requests may be.
///
/// A full batch means a backlog: the next is larger, up to `backlog` (fewer, larger bulk requests
/// drain faster). A batch handed back because its request timed out halves the ceiling, down to
/// `floor`, and full batches then double it again one step at a time: a cluster that cannot finish
/// a request of that size even in the longest timeout (`AdaptiveTimeout`) gets smaller ones. Other
/// failures leave the size alone: a 429, a 5xx or no connection says nothing about the size, and
/// each halving costs several full batches to undo (a soak's fault storms had shrunk every
/// worker's batches to 50–200 events under a 60,000-event backlog).
///
/// `backlog` and the request's bytes start at the configured sizes and grow by whole multiples
/// while the cluster indexes faster for it (`RequestSizeTuner`), up to `maxRequestBytes`.
struct BatchSizer: Sendable, Equatable {
    let normal: Int
    let floor: Int
    private let startingBacklog: Int
    /// The backlog size as configured, which may be smaller than `normal`: a round's documents.
    private let configuredBacklog: Int
    private let startingRequestBytes: Int
    private let maxRequestBytes: Int
    private(set) var tuner: RequestSizeTuner
    private(set) var next: Int
    private(set) var ceiling: Int

    /// `backlog` events and `requestBytes` per request under a backlog to start with; both grow by
    /// the same multiple, as long as the bytes stay within `maxRequestBytes` and the events within
    /// `BulkSizing.largestBatch`.
    init(normal: Int, backlog: Int, floor: Int = 50, requestBytes: Int = BulkSizing.maxRequestBytes, maxRequestBytes: Int? = nil) {
        self.normal = normal
        self.floor = min(floor, normal)
        startingBacklog = max(backlog, normal)
        configuredBacklog = max(1, backlog)
        self.maxRequestBytes = maxRequestBytes ?? requestBytes
        startingRequestBytes = min(requestBytes, self.maxRequestBytes)
        tuner = RequestSizeTuner(maxScale: min(Self.largestScale(from: startingRequestBytes, to: self.maxRequestBytes),
                                               Self.largestScale(from: startingBacklog, to: max(BulkSizing.largestBatch, startingBacklog))))
        next = normal
        ceiling = startingBacklog
    }

    /// The largest power of two by which `start` may be multiplied and stay within `limit`.
    static func largestScale(from start: Int, to limit: Int) -> Int {
        var scale = 1
        while start * scale * 2 <= limit { scale *= 2 }
        return scale
    }

    /// Events per batch under a backlog.
    var backlog: Int { startingBacklog * tuner.scale }

    /// What the next batch's requests may hold: at most a backlog batch's documents (a customer
    /// fan-out's chunk, a round of small customers' changes), fewer after timeouts (`ceiling`), and
    /// `bytes`; `scale` multiplies the configured fan-out chunk too.
    var requests: RequestSize {
        RequestSize(documents: min(ceiling, configuredBacklog * tuner.scale), bytes: min(startingRequestBytes * tuner.scale, maxRequestBytes), scale: tuner.scale)
    }

    /// A batch claimed `processed` events and indexed `documents` (its customers' orders included) in `duration`.
    mutating func completed(_ processed: Int, documents: Int = 0, duration: Duration = .zero) {
        if processed >= next {
            if next == backlog {
                // Only full batches at the backlog size measure the size: smaller ones are still growing.
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
        let scale = tuner.scale
        tuner.timedOut()
        if tuner.scale < scale {
            ceiling = min(ceiling, backlog)  // the grown size is what halved
        } else {
            ceiling = max(min(ceiling, next) / 2, floor)
        }
        next = min(next, ceiling)
    }
}

/// The limits of one batch's bulk requests (`BatchSizer.requests`).
public struct RequestSize: Sendable, Equatable {
    /// Documents of a customer fan-out's chunk or a round of small customers' changes.
    public var documents: Int
    /// Bytes of one request's body.
    public var bytes: Int
    /// How many times the starting size the requests have grown (`RequestSizeTuner`).
    public var scale: Int

    public init(documents: Int, bytes: Int, scale: Int = 1) {
        self.documents = documents
        self.bytes = bytes
        self.scale = scale
    }
}
