import OrderStore
import LibPQClient
import Testing

@Suite struct DatabaseOutageTests {
    /// An unreachable database: commands get 503 (problem+json), /ready says which dependency failed.
    @Test func unreachableDatabaseGives503() async throws {
        let pool = PostgresPool(configuration: .init(connectionString: "postgresql://orders@127.0.0.1:1/orders", size: 2), logger: TestEnvironment.logger)
        let database = TestDatabase(url: "", pool: pool)
        try await WriteAPIHarness.with(database: database) { api in
            let refused = try await api.client.post("/customers", json(["name": "A", "email": "a@example.com", "country": "DE"]))
            expectProblem(refused, 503)
            #expect(refused.header("retry-after") == "1")
            let ready = try await api.client.get("/ready")
            expectProblem(ready, 503)
            #expect(ready.json["dependency"]?.stringValue == "postgresql")
            #expect(try await api.client.get("/health").status == 200)
        }
    }

    /// The server drops every connection (as in a restart): the next request after recovery succeeds.
    @Test func reconnectsAfterConnectionsAreKilled() async throws {
        try await WriteAPIHarness.with() { api in
            let customer = try await api.createCustomer()
            let admin = try LibPQConnection(connectionString: try TestEnvironment.databaseURL)
            let killed = try admin.query(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                [String(api.database.url.split(separator: "/").last!)]
            )
            #expect(killed.first?.int(0) ?? 0 > 0)
            #expect(try await api.placeOrder(customerID: customer).status == 201)
            #expect(try await api.client.get("/customers/\(customer)").status == 200)
        }
    }
}
