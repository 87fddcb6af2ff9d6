import CLibPQ
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One libpq connection. Every method blocks the calling thread, so callers
/// must be on a dedicated thread (the pool runs them on its `NIOThreadPool`),
/// never on Swift's cooperative pool. The `Mutex` gives exclusive access, which
/// libpq requires (a `PGconn` must not be used by two threads at once).
///
/// This is the only file of the package that touches libpq's raw pointers.
public final class LibPQConnection: Sendable {
    private struct State {
        var handle: OpaquePointer?
        /// Statement text → its name on this connection and when it was prepared.
        var prepared: [String: PreparedStatement] = [:]
        var preparedCount = 0
    }

    private struct PreparedStatement {
        let name: String
        let at: ContinuousClock.Instant
    }

    private let state: Mutex<State>
    private let connectionString: String
    private let applicationName: String
    private let session: PostgresSessionSettings

    /// Opens a connection (blocking).
    public init(connectionString: String, applicationName: String = "orders", session: PostgresSessionSettings = .init()) throws(LibPQError) {
        self.connectionString = connectionString
        self.applicationName = applicationName
        self.session = session
        let handle = Self.open(connectionString, applicationName, session)
        guard PQstatus(handle) == CONNECTION_OK else {
            PQfinish(handle)
            throw LibPQError(code: .connection)
        }
        state = Mutex(State(handle: handle))
    }

    deinit {
        state.withLock { state in
            if let handle = state.handle { PQfinish(handle) }
            state.handle = nil
        }
    }

    private static func open(_ connectionString: String, _ applicationName: String, _ session: PostgresSessionSettings) -> OpaquePointer? {
        // Defaults come first; with expand_dbname the URI in `dbname` overrides them.
        let keywords = ["connect_timeout", "application_name", "options", "keepalives", "keepalives_idle", "keepalives_interval",
                        "keepalives_count", "dbname"]
        let values = ["5", applicationName, session.options, "1", "30", "10", "3", connectionString]
        return withCStrings(keywords) { k in
            withCStrings(values) { v in PQconnectdbParams(k, v, 1) }
        }
    }

    /// False once the server went away; the pool then reconnects.
    public var isHealthy: Bool {
        state.withLock { PQstatus($0.handle) == CONNECTION_OK }
    }

    /// Re-establishes a broken connection (blocking).
    public func reconnect() throws(LibPQError) {
        let ok = state.withLock { state -> Bool in
            if let handle = state.handle { PQfinish(handle) }
            state.prepared.removeAll()
            state.handle = Self.open(connectionString, applicationName, session)
            return PQstatus(state.handle) == CONNECTION_OK
        }
        if !ok { throw LibPQError(code: .connection) }
    }

    /// Runs one parameterized statement with the extended protocol. Statements are prepared once
    /// per connection and reused, and prepared again once older than `session.replanAfter`.
    @discardableResult
    public func query(_ sql: String, _ parameters: [(any PostgresBindable)?] = []) throws(LibPQError) -> PostgresRows {
        let result: Result<PostgresRows, LibPQError> = state.withLock { state in
            guard let handle = state.handle else { return .failure(LibPQError(code: .connection)) }
            let name: String
            switch prepare(sql, parameterCount: parameters.count, state: &state, handle: handle) {
            case .success(let prepared): name = prepared
            case .failure(let error): return .failure(error)
            }
            let texts = parameters.map { $0?.postgresText }
            let raw = withOptionalCStrings(texts) { values in
                PQexecPrepared(handle, name, Int32(texts.count), values, nil, nil, 0)
            }
            return Self.rows(from: raw, handle: handle)
        }
        return try result.get()
    }

    /// The name `sql` is prepared under on this connection: prepared now if it was not, or if it
    /// was longer ago than `session.replanAfter` (then the old one is deallocated, so the server
    /// plans it again for the tables as they are now).
    private func prepare(_ sql: String, parameterCount: Int, state: inout State, handle: OpaquePointer) -> Result<String, LibPQError> {
        let now = ContinuousClock.now
        if let known = state.prepared[sql] {
            if now - known.at < session.replanAfter { return .success(known.name) }
            state.prepared[sql] = nil
            // The name is ours ("s" and a number), never outside text.
            if case .failure(let error) = Self.rows(from: PQexec(handle, "DEALLOCATE \(known.name)"), handle: handle) {
                return .failure(error)
            }
        }
        state.preparedCount += 1
        let name = "s\(state.preparedCount)"
        if case .failure(let error) = Self.rows(from: PQprepare(handle, name, sql, Int32(parameterCount), nil), handle: handle) {
            return .failure(error)
        }
        state.prepared[sql] = PreparedStatement(name: name, at: now)
        return .success(name)
    }

    /// Runs one or more statements without parameters (simple protocol); for
    /// migrations and transaction control only, never with user input.
    public func execute(_ sql: StaticString) throws(LibPQError) {
        try executeTrusted(sql.description)
    }

    /// Like `execute(_:)` for SQL the package ships (migration files).
    public func executeTrusted(_ sql: String) throws(LibPQError) {
        let result: Result<PostgresRows, LibPQError> = state.withLock { state in
            guard let handle = state.handle else { return .failure(LibPQError(code: .connection)) }
            return Self.rows(from: PQexec(handle, sql), handle: handle)
        }
        _ = try result.get()
    }

    /// Waits up to `timeout` seconds for notifications on the channels this
    /// connection LISTENs to and returns their channel names (blocking).
    public func waitForNotifications(timeout: Double) throws(LibPQError) -> [String] {
        let socket: Int32 = state.withLock { PQsocket($0.handle) }
        guard socket >= 0 else { throw LibPQError(code: .connection) }
        var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, Int32(timeout * 1000))
        if ready < 0 && errno != EINTR { throw LibPQError(code: .connection) }
        let outcome: Result<[String], LibPQError> = state.withLock { state in
            guard let handle = state.handle, PQconsumeInput(handle) == 1 else {
                return .failure(LibPQError(code: .connection))
            }
            var channels: [String] = []
            while let notification = PQnotifies(handle) {
                channels.append(String(cString: notification.pointee.relname))
                PQfreemem(notification)
            }
            if PQstatus(handle) != CONNECTION_OK { return .failure(LibPQError(code: .connection)) }
            return .success(channels)
        }
        return try outcome.get()
    }

    private static func rows(from result: OpaquePointer?, handle: OpaquePointer) -> Result<PostgresRows, LibPQError> {
        defer { PQclear(result) }
        guard let result else { return .failure(LibPQError(code: .connection)) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return .success(PostgresRows(columns: [], values: [], affectedRows: Int(String(cString: PQcmdTuples(result))) ?? 0))
        case PGRES_TUPLES_OK:
            let columnCount = Int(PQnfields(result))
            let rowCount = Int(PQntuples(result))
            var columns: [String] = []
            columns.reserveCapacity(columnCount)
            for c in 0..<columnCount { columns.append(String(cString: PQfname(result, Int32(c)))) }
            var values: [String?] = []
            values.reserveCapacity(rowCount * columnCount)
            for r in 0..<Int32(rowCount) {
                for c in 0..<Int32(columnCount) {
                    if PQgetisnull(result, r, c) == 1 {
                        values.append(nil)
                    } else {
                        let length = Int(PQgetlength(result, r, c))
                        let pointer = UnsafeRawPointer(PQgetvalue(result, r, c)!)
                        values.append(String(decoding: UnsafeRawBufferPointer(start: pointer, count: length), as: UTF8.self))
                    }
                }
            }
            return .success(PostgresRows(columns: columns, values: values, affectedRows: rowCount))
        default:
            if PQstatus(handle) != CONNECTION_OK { return .failure(LibPQError(code: .connection)) }
            let sqlState = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            let constraint = PQresultErrorField(result, Int32(UInt8(ascii: "n"))).map { String(cString: $0) }
            return .failure(LibPQError(sqlState: sqlState, constraint: constraint))
        }
    }
}

private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) } + [nil]
    defer { pointers.forEach { free($0) } }
    return pointers.map { $0.map { UnsafePointer($0) } }.withUnsafeBufferPointer { body($0.baseAddress!) }
}

private func withOptionalCStrings<R>(_ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
    let pointers: [UnsafeMutablePointer<CChar>?] = strings.map { $0.map { strdup($0) } ?? nil }
    defer { pointers.forEach { free($0) } }
    let constPointers = pointers.map { $0.map { UnsafePointer($0) } }
    return constPointers.withUnsafeBufferPointer { body($0.baseAddress) }
}

/// Server-side limits for every session of a pool (sent as `options` at connect).
/// The APIs set all three, so a stuck statement, a lock wait or a forgotten
/// transaction cannot pin a worker; TCP keepalives are always on.
public struct PostgresSessionSettings: Sendable, Equatable {
    public var statementTimeout: Duration?
    public var lockTimeout: Duration?
    public var idleInTransactionTimeout: Duration?
    /// How long a connection reuses a prepared statement before preparing it again. PostgreSQL
    /// keeps a prepared statement's generic plan until the table's statistics change: one made
    /// while a table was nearly empty scans it whole, and goes on doing so as it grows, until
    /// autovacuum's next analyze (seen in `bench lag`: the indexer read every order, 170 pages, to
    /// find one). Preparing again bounds that window to this interval, at the cost of one
    /// planning per statement and connection per interval.
    public var replanAfter: Duration
    /// Plan every execution of a prepared statement for its parameters and the tables as they are
    /// now (`plan_cache_mode = force_custom_plan`) instead of reusing a generic plan.
    ///
    /// For the indexer, whose claims and document reads run on tables whose size swings (an outbox
    /// that fills and empties, a batch of one id or of thousands): with generic plans (one made
    /// again every 30 s) its claims read 320 buffers each where planned ones read 38, and the
    /// PostgreSQL CPU per event stayed the same (`bench lag --null-sink` with `pg_stat_statements`,
    /// 2026-12-03). The APIs keep generic plans: planning all their statements each time cost
    /// 46–60 % more PostgreSQL CPU per order in `bench write` (their inserts have no plan to get wrong).
    public var planEveryExecution: Bool

    public init(statementTimeout: Duration? = nil, lockTimeout: Duration? = nil, idleInTransactionTimeout: Duration? = nil,
                replanAfter: Duration = .seconds(30), planEveryExecution: Bool = false) {
        self.statementTimeout = statementTimeout
        self.lockTimeout = lockTimeout
        self.idleInTransactionTimeout = idleInTransactionTimeout
        self.replanAfter = replanAfter
        self.planEveryExecution = planEveryExecution
    }

    /// The APIs' limits: `PG_STATEMENT_TIMEOUT_MS` (5000), `PG_LOCK_TIMEOUT_MS` (3000),
    /// `PG_IDLE_IN_TRANSACTION_TIMEOUT_MS` (10000).
    public static func api(environment: [String: String]) -> PostgresSessionSettings {
        func milliseconds(_ key: String, _ fallback: Int) -> Duration {
            .milliseconds(environment[key].flatMap(Int.init).flatMap { $0 > 0 ? $0 : nil } ?? fallback)
        }
        return PostgresSessionSettings(statementTimeout: milliseconds("PG_STATEMENT_TIMEOUT_MS", 5000),
                                       lockTimeout: milliseconds("PG_LOCK_TIMEOUT_MS", 3000),
                                       idleInTransactionTimeout: milliseconds("PG_IDLE_IN_TRANSACTION_TIMEOUT_MS", 10_000))
    }

    var options: String {
        var parts = ["-c client_min_messages=warning"]
        func ms(_ d: Duration) -> Int64 { d.wholeMilliseconds }
        if let statementTimeout { parts.append("-c statement_timeout=\(ms(statementTimeout))") }
        if let lockTimeout { parts.append("-c lock_timeout=\(ms(lockTimeout))") }
        if let idleInTransactionTimeout { parts.append("-c idle_in_transaction_session_timeout=\(ms(idleInTransactionTimeout))") }
        if planEveryExecution { parts.append("-c plan_cache_mode=force_custom_plan") }
        return parts.joined(separator: " ")
    }
}
