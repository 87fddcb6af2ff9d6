import ArgumentParser
import Logging
import OrderAdmin
import OrderStore
import PostgresClient
import ServiceSupport

@main
struct OrderAdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "order-admin",
        abstract: "Operate the order system: schema migrations, reindexing, drift checks, dead letters.",
        subcommands: [Migrate.self]
    )
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Bring the write database schema up to date (safe to run repeatedly and concurrently).")

    func run() async throws {
        let logger = Observability.bootstrap(label: "order-admin")
        let configuration = ServiceConfiguration(environment: ProcessInfoEnvironment.all)
        let pool = PostgresPool(configuration: .init(connectionString: configuration.databaseURL, size: 1, applicationName: "order-admin"), logger: logger)
        defer { Task { await pool.shutdown() } }
        do {
            let applied = try await Migrator(logger: logger).migrate(pool)
            print(applied.isEmpty ? "schema is up to date" : "applied migrations: \(applied.map(String.init).joined(separator: ", "))")
        } catch let error as PostgresError {
            throw ValidationError("migration failed: \(error)")
        }
        await pool.shutdown()
    }
}
