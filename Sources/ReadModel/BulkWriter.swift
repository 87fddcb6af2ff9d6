import ElasticsearchClient
import Logging
import Metrics
import RetryPolicy

/// Sends bulk requests until every item has a final outcome: transient
/// failures (connection, timeout, 429, 5xx — whole request or single items)
/// are retried with exponential backoff and full jitter, never dropped.
/// Each request waits as long as `timeout` says: the cluster's own recent
/// latency, so a busy cluster is not sent the same work again while it is
/// still doing it. What each request shows of the cluster also goes to
/// `window`, which tells the indexer's workers how many may have a request out.
public struct BulkWriter: Sendable {
    public let client: ElasticsearchClient
    let logger: Logger
    public var backoff: Backoff = .bulk
    /// Shared by every copy of this writer: a process's requests wait in the same queue.
    public let timeout: AdaptiveTimeout
    /// Requests in flight the cluster can take now, learned from the same answers (nil: not tracked).
    public let window: ConcurrencyWindow?

    /// An index or alias this writer reads (`_count`, which the `read` privilege allows) after a
    /// timeout that no answer of its own preceded, to tell a cluster that is busy from one that is
    /// gone (nil: no probe; only this writer's own answers tell).
    public let probeIndex: String?

    public init(client: ElasticsearchClient, window: ConcurrencyWindow? = nil, probeIndex: String? = nil, logger: Logger) {
        self.client = client
        self.window = window
        self.probeIndex = probeIndex
        self.logger = logger
        timeout = AdaptiveTimeout(Self.timeoutPolicy(requestTimeout: client.configuration.requestTimeout))
    }

    /// A bulk request waits at least the client's request timeout (`ES_REQUEST_TIMEOUT_MS`), and up
    /// to sixteen times that (8 minutes by default) for a cluster that keeps answering, only slowly.
    /// Why that long: a request that times out is not undone, and sending it again queues the same
    /// work behind it. A 30-minute soak with the ceiling at four times saw three indexers, a rebuild
    /// and a reindex share one slow server whose queue held each request longer than that: requests
    /// were abandoned and sent again (events claimed up to 35 times) and the outbox drained nothing
    /// for 17 minutes. The lease is renewed while a request is out, so a long wait holds no
    /// transaction and loses nothing; a cluster that answers nothing at all is still given up on
    /// after about twice the request timeout (`AdaptiveTimeout`).
    public static func timeoutPolicy(requestTimeout: Duration) -> AdaptiveTimeout.Policy {
        AdaptiveTimeout.Policy(floor: requestTimeout, ceiling: requestTimeout * 16)
    }

    /// Transient failures went on past the caller's deadline (see `write(_:count:giveUpAt:)`).
    public struct GaveUp: Error, CustomStringConvertible {
        /// What the last attempt got: operators tell a busy cluster (timeouts) from a failing one
        /// (error answers, items refused for now) and from an unreachable one.
        public enum LastAttempt: String, Sendable {
            case timedOut = "timeout"
            case errorAnswer = "error_answer"
            case itemsToRetry = "items_to_retry"
            case noConnection = "no_connection"
        }

        public let attempts: Int
        public let lastAttempt: LastAttempt
        /// Set when the last attempt timed out on a cluster that is busy rather than gone (it kept
        /// answering other requests): it is most likely still doing that request, so the same work
        /// should not be sent again before this much longer, the time it was already given.
        public let resendAfter: Duration?
        public init(attempts: Int, lastAttempt: LastAttempt, resendAfter: Duration? = nil) {
            self.attempts = attempts
            self.lastAttempt = lastAttempt
            self.resendAfter = resendAfter
        }
        /// The last attempt got no answer in time.
        public var timedOut: Bool { lastAttempt == .timedOut }
        public var description: String {
            "Elasticsearch kept failing transiently; gave up after \(attempts) attempt(s), the last: \(lastAttempt.rawValue)"
        }
    }

    /// Final outcome per item: `.applied`, `.stale`, `.rejected` or `.indexMissing`.
    /// Returns only when no item needs a retry (or the task is cancelled). With `giveUpAt`,
    /// throws `GaveUp` instead of sleeping past it, so a caller that holds a lease can hand
    /// its work back in time.
    public func write(_ build: (_ include: (Int) -> Bool) -> BulkRequest, count: Int,
                      giveUpAt deadline: ContinuousClock.Instant? = nil) async throws -> [BulkItemOutcome] {
        var outcomes = [BulkItemOutcome?](repeating: nil, count: count)
        var pending = Array(0..<count)
        var attempt = 0
        var last = GaveUp.LastAttempt.noConnection, resendAfter: Duration?
        while !pending.isEmpty {
            try Task.checkCancellation()
            let pendingSet = Set(pending)
            let request = build { pendingSet.contains($0) }
            let start = ContinuousClock.now, waited = timeout.current
            let sent: Result<[BulkItemOutcome], ElasticsearchError>
            do { sent = .success(try await client.bulk(request, timeout: waited)) } catch { sent = .failure(error) }
            (last, resendAfter) = await learn(from: sent, sentAt: start, waited: waited)
            switch sent {
            case .success(let results):
                Timer(label: "indexer_bulk_duration_seconds").record(duration: ContinuousClock.now - start)
                var stillPending: [Int] = []
                for (position, index) in pending.enumerated() {
                    if case .retry = results[position] {
                        stillPending.append(index)
                    } else {
                        outcomes[index] = results[position]
                    }
                }
                if stillPending.isEmpty { return outcomes.map { $0 ?? .applied } }
                Counter(label: "indexer_bulk_item_retries_total").increment(by: stillPending.count)
                logger.warning("bulk items to retry", metadata: ["es.items": "\(stillPending.count)", "es.attempt": "\(attempt)"])
                pending = stillPending
            case .failure(let error) where error.isTransient:
                Counter(label: "indexer_bulk_retries_total").increment()
                logger.warning("bulk request failed; retrying", metadata: ["es.error": "\(error)", "es.attempt": "\(attempt)"])
            case .failure(let error):
                throw error
            }
            attempt += 1
            let delay = backoff.delay(attempt: attempt)
            if let deadline, ContinuousClock.now + delay >= deadline {
                throw GaveUp(attempts: attempt, lastAttempt: last, resendAfter: resendAfter)
            }
            try await Task.sleep(for: delay)
        }
        return outcomes.map { $0 ?? .applied }
    }

    /// `write(_:count:giveUpAt:)` for a request built once: a retry sends the bytes of the items
    /// still pending (`BulkRequest.subset`).
    public func write(_ request: BulkRequest, giveUpAt deadline: ContinuousClock.Instant? = nil) async throws -> [BulkItemOutcome] {
        try await write({ request.subset($0) }, count: request.count, giveUpAt: deadline)
    }

    /// Any HTTP answer tells how long the cluster takes (a 429 says it is overloaded, whatever its
    /// latency); no answer in time is a timeout, after which the cluster is probed unless it answered
    /// this writer since the previous timeout. All of it goes to `timeout` and `window`. Returns what
    /// the attempt got, and after a timeout on a busy cluster how long to wait before sending it again.
    private func learn(from sent: Result<[BulkItemOutcome], ElasticsearchError>, sentAt: ContinuousClock.Instant,
                       waited: Duration) async -> (GaveUp.LastAttempt, resendAfter: Duration?) {
        let attempt: (GaveUp.LastAttempt, resendAfter: Duration?)
        switch sent {
        case .failure(let error) where error.code == .timeout:
            let answering = timeout.answeredSinceTimeout ? false : await clusterAnswersProbe()
            let busy = timeout.timedOut(answering: answering)
            window?.timedOut(sentAt: sentAt)
            attempt = (.timedOut, busy ? waited : nil)
        case .failure(let error) where error.status == nil:
            return (.noConnection, nil)
        case .failure(let error) where Self.isGatewayTimeout(error):
            // A proxy in front of the cluster stopped waiting: the cluster is most likely still doing
            // the request, so this is a timeout on a busy cluster, and its work is not sent again at once.
            let waited = ContinuousClock.now - sentAt
            timeout.answered(after: waited)
            window?.timedOut(sentAt: sentAt)
            attempt = (.timedOut, waited)
        case .success, .failure:
            let slow = timeout.answered(after: .now - sentAt)
            let overloaded = if case .failure(let error) = sent { error.status == 429 } else { false }
            window?.answered(sentAt: sentAt, slow: slow || overloaded)
            attempt = if case .success = sent { (.itemsToRetry, nil) } else { (.errorAnswer, nil) }
        }
        Gauge(label: "indexer_bulk_timeout_seconds").record(Double(timeout.current.components.seconds))
        if let window { Gauge(label: "indexer_bulk_concurrency_limit").record(Double(window.limit)) }
        return attempt
    }
}

extension BulkWriter {
    /// A 504: a gateway (a load balancer, a proxy) in front of the cluster stopped waiting for it,
    /// which says only that the request is under way. (A 502 is a gateway that got no answer at all.)
    /// Counted as an error answer, it had the batch sent again at once while the cluster still did it:
    /// in soaks whose proxy cut slow requests (then with a 502), the busy server's queue only grew and
    /// live indexing stalled for minutes.
    static func isGatewayTimeout(_ error: ElasticsearchError) -> Bool { error.status == 504 }

    /// Whether the cluster answers a read of `probeIndex` within a few seconds.
    func clusterAnswersProbe() async -> Bool {
        guard let probeIndex else { return false }
        let answered = await client.ping(probeIndex, timeout: .seconds(5))
        Counter(label: "indexer_bulk_timeout_probes_total", dimensions: [("answered", answered ? "yes" : "no")]).increment()
        return answered
    }
}

/// The cluster refused writes for a reason outside the documents (`BulkItemOutcome.refused`).
public struct WritesRefused: Error, CustomStringConvertible {
    public let status: Int
    public let errorType: String?
    public var description: String {
        "the cluster refused the writes (status \(status), \(errorType ?? "no error type")): an index write block or an API key without the write privilege"
    }
}

extension Array where Element == BulkItemOutcome {
    /// Throws `WritesRefused` for the first refused item.
    public func throwIfRefused() throws {
        for case .refused(let status, let errorType) in self { throw WritesRefused(status: status, errorType: errorType) }
    }
}
