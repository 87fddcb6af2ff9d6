import Logging
import NIOPosix
import RetryPolicy
import Synchronization

/// A fixed-size pool of libpq connections. Work runs on the pool's own
/// `NIOThreadPool` (one thread per connection), never on Swift's cooperative
/// thread pool, because every libpq call blocks.
public final class PostgresPool: Sendable {
    public struct Configuration: Sendable {
        public var connectionString: String
        public var size: Int
        public var applicationName: String
        /// How long a caller waits for a free connection before `.timeout`.
        public var acquireTimeout: Duration
        /// How often a transaction is run again after a serialization failure or deadlock.
        public var maxTransactionAttempts: Int
        /// Callers that may wait for a connection at once; beyond that `acquire`
        /// fails at once with `.timeout` (the APIs answer 503 with Retry-After).
        public var maxWaiters: Int
        public var session: PostgresSessionSettings

        public init(connectionString: String, size: Int = 8, applicationName: String = "orders",
                    acquireTimeout: Duration = .seconds(10), maxTransactionAttempts: Int = 8, maxWaiters: Int = 512,
                    session: PostgresSessionSettings = .init()) {
            self.connectionString = connectionString
            self.size = size
            self.applicationName = applicationName
            self.acquireTimeout = acquireTimeout
            self.maxTransactionAttempts = maxTransactionAttempts
            self.maxWaiters = maxWaiters
            self.session = session
        }
    }

    private struct Waiter {
        let id: Int
        let continuation: CheckedContinuation<LibPQConnection?, Never>
    }

    private struct State {
        var idle: [LibPQConnection] = []
        var opened = 0
        var waiters: [Waiter] = []
        var nextWaiterID = 0
        var closed = false
    }

    public let configuration: Configuration
    private let threadPool: NIOThreadPool
    private let state = Mutex(State())
    private let logger: Logger

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        threadPool = NIOThreadPool(numberOfThreads: max(1, configuration.size))
        threadPool.start()
    }

    /// Closes idle connections and stops the threads; in-flight work finishes first.
    public func shutdown() async {
        let waiters = state.withLock { state -> [Waiter] in
            state.closed = true
            state.idle.removeAll()
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        waiters.forEach { $0.continuation.resume(returning: nil) }
        try? await threadPool.shutdownGracefully()
    }

    /// Runs `body` with a connection on the pool's thread. The body is synchronous
    /// on purpose: it may block, and it cannot accidentally hop back to the cooperative pool.
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (LibPQConnection) throws -> T) async throws -> T {
        let connection = try await acquire()
        do {
            let value = try await threadPool.runIfActive {
                if !connection.isHealthy { try connection.reconnect() }
                return try body(connection)
            }
            release(connection)
            return value
        } catch {
            release(connection)
            throw error
        }
    }

    /// Holds one connection across suspension points (for work that interleaves
    /// database statements with other I/O, like a claim transaction kept open
    /// until Elasticsearch acknowledged). Each `run` hops to the pool's thread.
    public func withReservedConnection<T: Sendable>(_ body: (ReservedConnection) async throws -> T) async throws -> T {
        let connection = try await acquire()
        defer { release(connection) }
        let reserved = ReservedConnection(connection: connection, threadPool: threadPool)
        try await reserved.run { connection in
            if !connection.isHealthy { try connection.reconnect() }
        }
        return try await body(reserved)
    }

    /// Runs `body` inside a transaction, committing on return and rolling back on
    /// throw. Serialization failures and deadlocks run the whole body again (with
    /// jittered backoff), so the body must be free of side effects outside the database.
    public func transaction<T: Sendable>(
        isolation: IsolationLevel = .readCommitted,
        _ body: @escaping @Sendable (LibPQConnection) throws -> T
    ) async throws -> T {
        var attempt = 1
        while true {
            do {
                return try await withConnection { connection in
                    do {
                        try connection.execute(isolation.begin)
                    } catch let error as LibPQError where error.code == .connection {
                        // A stale connection (the server restarted while it sat idle):
                        // nothing was sent yet, so reconnecting and starting over is safe.
                        try connection.reconnect()
                        try connection.execute(isolation.begin)
                    }
                    do {
                        let value = try body(connection)
                        try connection.execute("COMMIT")
                        return value
                    } catch {
                        try? connection.execute("ROLLBACK")
                        throw error
                    }
                }
            } catch let error as LibPQError where error.isRetryable && attempt < configuration.maxTransactionAttempts {
                logger.debug("retrying transaction", metadata: ["db.error": "\(error)", "db.attempt": "\(attempt)"])
                try await Task.sleep(for: Backoff.transaction.delay(attempt: attempt))
                attempt += 1
            }
        }
    }

    public enum IsolationLevel: Sendable {
        case readCommitted, repeatableRead, serializable, repeatableReadReadOnly

        var begin: StaticString {
            switch self {
            case .readCommitted: "BEGIN ISOLATION LEVEL READ COMMITTED"
            case .repeatableRead: "BEGIN ISOLATION LEVEL REPEATABLE READ"
            case .serializable: "BEGIN ISOLATION LEVEL SERIALIZABLE"
            case .repeatableReadReadOnly: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
            }
        }
    }

    /// A query on a pooled connection.
    @discardableResult
    public func query(_ sql: String, _ parameters: [(any PostgresBindable)?] = []) async throws -> PostgresRows {
        try await withConnection { try $0.queryReconnectingIfStale(sql, parameters) }
    }

    // MARK: - acquiring

    private enum Acquire {
        case ready(LibPQConnection)
        case open
        case wait
        case full
    }

    private func acquire() async throws -> LibPQConnection {
        let decision = state.withLock { state -> Acquire in
            if let connection = state.idle.popLast() { return .ready(connection) }
            if state.opened < configuration.size {
                state.opened += 1
                return .open
            }
            return .wait
        }
        switch decision {
        case .ready(let connection):
            return connection
        case .open:
            let configuration = self.configuration
            do {
                return try await threadPool.runIfActive {
                    try LibPQConnection(connectionString: configuration.connectionString, applicationName: configuration.applicationName,
                                           session: configuration.session)
                }
            } catch {
                let waiter = state.withLock { state -> Waiter? in
                    state.opened -= 1
                    // A waiter queued behind this failed attempt tries to open its own.
                    return state.waiters.isEmpty ? nil : state.waiters.removeFirst()
                }
                waiter?.continuation.resume(returning: nil)
                throw error
            }
        case .wait, .full:
            return try await waitForConnection()
        }
    }

    private func waitForConnection() async throws -> LibPQConnection {
        let id = state.withLock { state -> Int in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        let timeout = configuration.acquireTimeout
        let timer = Task {
            try await Task.sleep(for: timeout)
            let waiter = self.state.withLock { state -> Waiter? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index)
            }
            waiter?.continuation.resume(returning: nil)
        }
        defer { timer.cancel() }
        let size = configuration.size, maxWaiters = configuration.maxWaiters
        let connection: LibPQConnection? = await withCheckedContinuation { continuation in
            let immediate = state.withLock { state -> Acquire in
                if state.closed { return .wait }
                if let connection = state.idle.popLast() { return .ready(connection) }
                if state.opened < size { return .open }
                if state.waiters.count >= maxWaiters { return .full }
                state.waiters.append(Waiter(id: id, continuation: continuation))
                return .wait
            }
            switch immediate {
            case .ready(let connection): continuation.resume(returning: connection)
            case .open: continuation.resume(returning: nil)  // handled below by opening
            case .full: continuation.resume(returning: nil)  // the queue is full: fails below without waiting
            case .wait:
                if state.withLock({ $0.closed }) { continuation.resume(returning: nil) }
            }
        }
        if let connection { return connection }
        // Either timed out, the pool closed, or a slot to open a connection became free.
        let canOpen = state.withLock { state -> Bool in
            guard !state.closed, state.opened < size else { return false }
            state.opened += 1
            return true
        }
        guard canOpen else {
            throw LibPQError(code: state.withLock { $0.closed } ? .connection : .timeout)
        }
        let settings = self.configuration
        do {
            return try await threadPool.runIfActive {
                try LibPQConnection(connectionString: settings.connectionString, applicationName: settings.applicationName,
                                       session: settings.session)
            }
        } catch {
            state.withLock { $0.opened -= 1 }
            throw error
        }
    }

    private func release(_ connection: LibPQConnection) {
        let waiter = state.withLock { state -> Waiter? in
            if state.closed {
                state.opened -= 1
                return nil
            }
            if !state.waiters.isEmpty { return state.waiters.removeFirst() }
            state.idle.append(connection)
            return nil
        }
        waiter?.continuation.resume(returning: connection)
    }
}

/// A connection held by one task; statements run on the pool's threads.
public struct ReservedConnection: Sendable {
    let connection: LibPQConnection
    let threadPool: NIOThreadPool

    public func run<T: Sendable>(_ body: @escaping @Sendable (LibPQConnection) throws -> T) async throws -> T {
        try await threadPool.runIfActive { try body(connection) }
    }

    @discardableResult
    public func query(_ sql: String, _ parameters: [(any PostgresBindable)?] = []) async throws -> PostgresRows {
        try await run { try $0.query(sql, parameters) }
    }

    public func execute(_ sql: StaticString) async throws {
        try await run { try $0.execute(sql) }
    }
}

extension LibPQConnection {
    /// A statement outside a transaction, on a connection that may have gone stale while idle in
    /// the pool: a lost connection gets one fresh attempt.
    @discardableResult
    public func queryReconnectingIfStale(_ sql: String, _ parameters: [(any PostgresBindable)?] = []) throws -> PostgresRows {
        do {
            return try query(sql, parameters)
        } catch where error.code == .connection {
            try reconnect()
            return try query(sql, parameters)
        }
    }
}
