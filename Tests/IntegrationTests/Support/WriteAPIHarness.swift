import Testing
import Hummingbird
import Logging
import OrderStore
import OrderWriteAPI
import LibPQClient
import Security
import ServiceSupport
import ServiceTesting

/// Runs the real write API (the same `buildWriteApplication` as `main`) on a
/// free port against a fresh database.
struct WriteAPIHarness {
    let database: TestDatabase
    let service: WriteService
    let client: TestHTTP
    let task: Task<Void, any Error>

    static func start(database: TestDatabase? = nil, limits: HTTPServerLimits = .init(), auth: AuthConfiguration? = nil,
                      logger: Logger = TestEnvironment.logger) async throws -> WriteAPIHarness
    {
        let database = if let database { database } else { try await TestDatabase.create() }
        let service = WriteService(pool: database.pool, logger: TestEnvironment.logger)
        let auth = if let auth { try await auth.mode() } else { try await TestEnvironment.authMode() }
        let signer = try TestEnvironment.signer
        let (port, task) = try await startServer { onRunning in
            buildWriteApplication(service: service, auth: auth, signer: signer, address: HostAndPort(host: "127.0.0.1", port: 0),
                                  limits: limits, logger: logger, onServerRunning: onRunning)
        }
        let client = TestHTTP(base: "http://127.0.0.1:\(port)", bearer: try await TestEnvironment.token([.staff]))
        return WriteAPIHarness(database: database, service: service, client: client, task: task)
    }

    func stop() async {
        task.cancel()
        _ = await task.result
        await database.close()
    }

    // Convenience: create things through the API.
    func createCustomer(name: String = "Alice Smith", email: String? = nil, country: String = "DE") async throws -> String {
        let reply = try await client.post("/customers", json(["name": .string(name), "email": .string(email ?? TestEnvironment.uniqueName("c") + "@example.com"), "country": .string(country)]))
        guard reply.status == 201, let id = reply.json["id"]?.stringValue else { throw HarnessError.unexpected(reply.status, reply.text) }
        return id
    }

    func placeOrder(customerID: String, items: [(String, String, Int, String)] = [("MUG-1", "Blue Mug", 3, "19.99")],
                    currency: String = "EUR", city: String = "Berlin", country: String = "DE", note: String? = nil) async throws -> TestHTTP.Reply {
        try await client.post("/orders", orderBody(customerID: customerID, items: items, currency: currency, city: city, country: country, note: note))
    }

    enum HarnessError: Error { case unexpected(Int, String) }
}

func orderBody(customerID: String, items: [(String, String, Int, String)] = [("MUG-1", "Blue Mug", 3, "19.99")],
               currency: String = "EUR", city: String = "Berlin", country: String = "DE", note: String? = nil) -> String {
    json([
        "customer_id": .string(customerID), "currency": .string(currency),
        "items": .array(items.map { ["sku": .string($0.0), "name": .string($0.1), "quantity": .int($0.2), "unit_price": .string($0.3)] }),
        "shipping_address": ["line1": "Main Street 1", "city": .string(city), "postal_code": "10115", "country": .string(country)],
        "note": note.map { .string($0) } ?? .null,
    ])
}

/// Starts an application in a task and returns the port it listens on.
func startServer<App: ApplicationProtocol>(
    _ build: (@escaping @Sendable (Int) async -> Void) -> App
) async throws -> (Int, Task<Void, any Error>) {
    let (stream, continuation) = AsyncStream<Int>.makeStream()
    let app = build { port in continuation.yield(port) }
    let task = Task { try await app.run() }
    var iterator = stream.makeAsyncIterator()
    guard let port = await iterator.next() else { throw CancellationError() }
    return (port, task)
}

extension WriteAPIHarness {
    /// Runs `body` against a fresh write API and stops it afterwards, also when `body` throws.
    static func with(database: TestDatabase? = nil, limits: HTTPServerLimits = .init(), auth: AuthConfiguration? = nil,
                     logger: Logger = TestEnvironment.logger, _ body: (WriteAPIHarness) async throws -> Void) async throws {
        try await withScoped({ try await start(database: database, limits: limits, auth: auth, logger: logger) }, stop: { await $0.stop() }, body)
    }
}
