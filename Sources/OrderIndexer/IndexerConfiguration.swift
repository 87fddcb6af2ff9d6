import LibPQClient
import ReadModel

extension IndexerService.Configuration {
    /// The hard limit on any transaction of the indexer (guarantee 6).
    public static let transactionLimit: Duration = .seconds(60)

    public struct InvalidSetting: Error, CustomStringConvertible {
        public let variable: String
        public let expected: String
        public var description: String { "\(variable) must be \(expected)" }
    }

    /// Reads the `INDEXER_*` variables (README, Configuration); throws naming a variable whose value is out of range.
    public init(environment: [String: String]) throws {
        self.init()
        func integer(_ key: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let text = environment[key], !text.isEmpty else { return nil }
            guard let value = Int(text), range.contains(value) else {
                throw InvalidSetting(variable: key, expected: "an integer in \(range.lowerBound)...\(range.upperBound)")
            }
            return value
        }
        if let workers = try integer("INDEXER_WORKERS", 1...64) { self.workers = workers }
        if let batch = try integer("INDEXER_BATCH_SIZE", 1...10_000) { processor.batchSize = batch }
        if let delay = try integer("INDEXER_BATCH_DELAY_MS", 0...10_000) { batchDelay = .milliseconds(delay) }
        if let batch = try integer("INDEXER_BACKLOG_BATCH_SIZE", 1...BulkSizing.largestBatch) { processor.backlogBatchSize = batch }
        // At most half of Elasticsearch's default `http.max_content_length` (100 MiB), whose 413 no retry would cure.
        if let bytes = try integer("INDEXER_MAX_BULK_BYTES", 65_536...52_428_800) { processor.maxBulkBytes = bytes }
        if let chunk = try integer("INDEXER_FAN_OUT_CHUNK", 1...10_000) { processor.fanOutChunk = chunk }
        if let lease = try integer("INDEXER_LEASE_MS", 1000...3_600_000) { processor.lease = .milliseconds(lease) }
        if let handBack = try integer("INDEXER_HAND_BACK_MS", 100...3_600_000) { processor.handBackAfter = .milliseconds(handBack) }
        if let batch = try integer("INDEXER_REBUILD_BATCH_SIZE", 1...10_000) { rebuildBatchSize = batch }
        processor.ackTimingsPath = environment["INDEXER_ACK_TIMINGS"]
        let limit = Int(Self.transactionLimit.wholeMilliseconds)
        if let bound = try integer("INDEXER_MAX_TRANSACTION_MS", 1000...limit) { maxTransaction = .milliseconds(bound) }
    }

    /// The indexer's PostgreSQL sessions: no statement and no transaction outlives `maxTransaction`,
    /// whatever happens (the server cancels the statement or ends the session); every execution
    /// planned (`PostgresSessionSettings.planEveryExecution` says why).
    public var session: PostgresSessionSettings {
        PostgresSessionSettings(statementTimeout: maxTransaction, lockTimeout: maxTransaction, idleInTransactionTimeout: maxTransaction,
                                planEveryExecution: true)
    }
}
