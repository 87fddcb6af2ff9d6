import Foundation
import JSONSupport
import Logging
import OrderDomain
import LibPQClient

/// The write side's application layer: each command loads an aggregate, lets
/// the domain decide, and saves the new state, its outbox event and (when the
/// client sent an `Idempotency-Key`) the response in one transaction.
public struct WriteService: Sendable {
    /// A response kept for idempotent replay.
    public struct StoredResponse: Sendable, Equatable {
        public var status: Int
        public var headers: [String: String]
        public var body: String

        public init(status: Int, headers: [String: String], body: String) {
            self.status = status
            self.headers = headers
            self.body = body
        }
    }

    /// What the client sent along with the command.
    public struct Request: Sendable {
        public var idempotencyKey: String?
        /// Hash of method, path and body: a key reused with another request is refused (empty without a key).
        public var fingerprint: String
        /// `If-Match` version, if given.
        public var expectedVersion: Int?

        public init(idempotencyKey: String?, fingerprint: String, expectedVersion: Int?) {
            self.idempotencyKey = idempotencyKey
            self.fingerprint = fingerprint
            self.expectedVersion = expectedVersion
        }
    }

    public enum Outcome<Value: Sendable>: Sendable {
        /// The command ran now.
        case executed(Value, StoredResponse)
        /// An earlier request with the same key ran it; this is its response.
        case replayed(StoredResponse)
    }

    public enum CommandError: Error, Sendable, Equatable {
        case notFound
        case domain(DomainError)
        case versionMismatch(current: Int)
        case emailTaken
        case idempotencyKeyReused
    }

    public enum OrderCommand: Sendable {
        case pay(reference: String, amount: String)
        case ship(carrier: String, trackingNumber: String)
        case deliver
        case cancel(reason: String)
    }

    public let pool: PostgresPool
    let ids: IDGenerator
    let clock: @Sendable () -> Timestamp
    let logger: Logger

    public init(pool: PostgresPool, logger: Logger, clock: @escaping @Sendable () -> Timestamp = Timestamp.now) {
        self.pool = pool
        self.logger = logger
        self.clock = clock
        self.ids = IDGenerator()
    }

    // MARK: - Queries (strongly consistent: straight from the write database)

    public func customer(id: String) async throws -> Customer? {
        try await pool.withConnection { try CustomerRepository.find(id, forUpdate: false, on: $0) }
    }

    public func customerExists(id: String) async throws -> Bool {
        try await !pool.query("SELECT 1 FROM customers WHERE id = $1", [id]).isEmpty
    }

    public func order(id: String) async throws -> Order? {
        try await pool.transaction(isolation: .repeatableReadReadOnly) { try OrderRepository.find(id, forUpdate: false, on: $0) }
    }

    // MARK: - Commands

    public func registerCustomer(
        name: String, email: String, country: String, request: Request,
        render: @escaping @Sendable (Customer) -> StoredResponse
    ) async throws -> Outcome<Customer> {
        let id = ids.make(prefix: "cus")
        let now = clock()
        return try await run(request) { connection in
            let (customer, event): (Customer, DomainEvent)
            do { (customer, event) = try Customer.register(id: id, name: name, email: email, country: country, now: now) }
            catch let error as DomainError { throw CommandError.domain(error) }
            do { try CustomerRepository.insert(customer, on: connection) }
            catch let error as LibPQError where error.code == .uniqueViolation && error.constraint == "customers_email_key" {
                throw CommandError.emailTaken
            }
            try OutboxWriter.append(event, payload: customer.json, on: connection)
            return (customer, render(customer))
        }
    }

    public func changeCustomer(
        id: String, name: String?, email: String?, country: String?, request: Request,
        render: @escaping @Sendable (Customer) -> StoredResponse
    ) async throws -> Outcome<Customer> {
        let now = clock()
        return try await run(request) { connection in
            guard var customer = try CustomerRepository.find(id, forUpdate: true, on: connection) else { throw CommandError.notFound }
            if let expected = request.expectedVersion, expected != customer.version {
                throw CommandError.versionMismatch(current: customer.version)
            }
            let event: DomainEvent?
            do { event = try customer.change(name: name, email: email, country: country, now: now) }
            catch let error as DomainError { throw CommandError.domain(error) }
            if let event {
                do { try CustomerRepository.update(customer, on: connection) }
                catch let error as LibPQError where error.code == .uniqueViolation && error.constraint == "customers_email_key" {
                    throw CommandError.emailTaken
                }
                try OutboxWriter.append(event, payload: customer.json, on: connection)
            }
            return (customer, render(customer))
        }
    }

    public func placeOrder(
        _ command: PlaceOrder, request: Request, render: @escaping @Sendable (Order) -> StoredResponse
    ) async throws -> Outcome<Order> {
        let id = ids.make(prefix: "ord")
        let now = clock()
        return try await run(request) { connection in
            let (order, event): (Order, DomainEvent)
            do { (order, event) = try Order.place(id: id, command, now: now) }
            catch let error as DomainError { throw CommandError.domain(error) }
            // KEY SHARE: the customer cannot be deleted or re-keyed underneath us,
            // without blocking a concurrent rename.
            let exists = try connection.query("SELECT 1 FROM customers WHERE id = $1 FOR KEY SHARE", [command.customerID])
            guard !exists.isEmpty else {
                throw CommandError.domain(.validation([FieldError(field: "customer_id", message: "no customer has this id")]))
            }
            try OrderRepository.insert(order, on: connection)
            try OutboxWriter.append(event, payload: order.json, on: connection)
            return (order, render(order))
        }
    }

    public func execute(
        _ command: OrderCommand, orderID: String, request: Request, render: @escaping @Sendable (Order) -> StoredResponse
    ) async throws -> Outcome<Order> {
        let now = clock()
        return try await run(request) { connection in
            guard var order = try OrderRepository.find(orderID, forUpdate: true, on: connection) else { throw CommandError.notFound }
            if let expected = request.expectedVersion, expected != order.version {
                throw CommandError.versionMismatch(current: order.version)
            }
            let event: DomainEvent
            do {
                switch command {
                case .pay(let reference, let amount): event = try order.pay(reference: reference, amount: amount, now: now)
                case .ship(let carrier, let tracking): event = try order.ship(carrier: carrier, trackingNumber: tracking, now: now)
                case .deliver: event = try order.deliver(now: now)
                case .cancel(let reason): event = try order.cancel(reason: reason, now: now)
                }
            } catch let error as DomainError {
                throw CommandError.domain(error)
            }
            try OrderRepository.update(order, on: connection)
            try OutboxWriter.append(event, payload: order.json, on: connection)
            return (order, render(order))
        }
    }

    // MARK: - Idempotency

    private func run<Value: Sendable>(
        _ request: Request, _ body: @escaping @Sendable (LibPQConnection) throws -> (Value, StoredResponse)
    ) async throws -> Outcome<Value> {
        try await pool.transaction { connection in
            if let key = request.idempotencyKey {
                // Requests with the same key run one after another; a later one
                // finds the first one's response instead of running again.
                try connection.query("SELECT pg_advisory_xact_lock(hashtextextended($1, $2))", [key, AdvisoryLock.idempotencyKeySeed])
                if let stored = try Self.storedResponse(key: key, fingerprint: request.fingerprint, on: connection) {
                    return .replayed(stored)
                }
            }
            let (value, response) = try body(connection)
            if let key = request.idempotencyKey {
                try connection.query(
                    """
                    INSERT INTO idempotency_keys (key, request_hash, status, response_headers, response_body)
                    VALUES ($1, $2, $3, $4::jsonb, $5)
                    """,
                    [key, request.fingerprint, response.status, Self.headersJSON(response.headers), response.body]
                )
            }
            return .executed(value, response)
        }
    }

    private static func storedResponse(key: String, fingerprint: String, on connection: LibPQConnection) throws -> StoredResponse? {
        let rows = try connection.query(
            "SELECT request_hash, status, response_headers::text, response_body FROM idempotency_keys WHERE key = $1", [key]
        )
        guard let row = rows.first else { return nil }
        guard row.string(0) == fingerprint else { throw CommandError.idempotencyKeyReused }
        return StoredResponse(status: row.int(1)!, headers: parseHeaders(row.string(2)!), body: row.string(3)!)
    }

    /// The stored response headers as a JSON object (keys sorted, so equal headers store equal text).
    static func headersJSON(_ headers: [String: String]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(headers)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    static func parseHeaders(_ json: String) -> [String: String] {
        (try? JSONDecoder().decode([String: String].self, from: Data(json.utf8))) ?? [:]
    }

    /// Deletes idempotency keys older than the retention (the contract keeps them at least 24 h).
    public func pruneIdempotencyKeys(olderThanHours hours: Int = 48) async throws -> Int {
        try await pool.query("DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)", [hours]).affectedRows
    }
}
