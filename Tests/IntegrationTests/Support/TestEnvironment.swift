import ElasticsearchClient
import Foundation
import Logging
import OrderStore
import LibPQClient
import Security
import TokenSigning
import ServiceSupport
import Testing

/// The servers `scripts/test` starts. Integration tests talk to them over the
/// network; without them the tests fail (they are never silently skipped).
enum TestEnvironment {
    struct Missing: Error, CustomStringConvertible {
        var description: String {
            "TEST_DATABASE_URL / TEST_ELASTICSEARCH_URL / AUTH_JWT_SECRET / SIGNING_KEY are not set: run the tests with scripts/test"
        }
    }

    static var databaseURL: String {
        get throws {
            guard let url = ProcessInfo.processInfo.environment["TEST_DATABASE_URL"], !url.isEmpty else { throw Missing() }
            return url
        }
    }

    static var elasticsearchURL: String {
        get throws {
            guard let url = ProcessInfo.processInfo.environment["TEST_ELASTICSEARCH_URL"], !url.isEmpty else { throw Missing() }
            return url
        }
    }

    /// `AUTH_JWT_SECRET` and `SIGNING_KEY` as scripts/test exports them (child processes inherit them).
    static var authSecret: String {
        get throws {
            guard let secret = ProcessInfo.processInfo.environment["AUTH_JWT_SECRET"], !secret.isEmpty else { throw Missing() }
            return secret
        }
    }

    static var signer: TokenSigner {
        get throws { try TokenSigner(environment: ProcessInfo.processInfo.environment) }
    }

    /// Authentication as the services run it: HS256 with the test secret.
    static func authMode() async throws -> AuthConfiguration.Mode {
        try await AuthConfiguration(jwtSecret: try authSecret).mode()
    }

    /// A token signed with the test secret.
    static func token(_ roles: [Role], customerID: String? = nil, subject: String? = nil) async throws -> String {
        try await AccessTokenMinter(secret: try authSecret)
            .mint(subject: subject ?? "test-" + roles.map(\.rawValue).joined(separator: "+") + (customerID.map { ":" + $0 } ?? ""),
                  roles: roles, customerID: customerID)
    }

    /// Metrics go to the same Prometheus registry as in the executables, so
    /// tests can read `/metrics`.
    static let metrics: Void = Observability.bootstrapMetrics()

    static let logger: Logger = {
        _ = metrics
        var logger = Logger(label: "tests")
        logger.logLevel = ProcessInfo.processInfo.environment["TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        return logger
    }()

    /// The repository root (for the built binaries and the osmem-server in `.venv`).
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A unique lower-case name for databases, aliases and e-mails.
    static func uniqueName(_ prefix: String) -> String {
        let letters = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        return prefix + String((0..<10).map { _ in letters.randomElement()! })
    }
}

/// A fresh, migrated database per test, so tests can run in parallel and
/// count rows exactly.
struct TestDatabase {
    let url: String
    let pool: PostgresPool
    /// Whether this database holds one of `TestSlots.databases` (given back by `close`).
    var holdsSlot = false

    static func create(poolSize: Int = 4) async throws -> TestDatabase {
        await TestSlots.databases.acquire()
        do {
            let adminURL = try TestEnvironment.databaseURL
            let name = TestEnvironment.uniqueName("t_")
            let admin = try LibPQConnection(connectionString: adminURL)
            try admin.executeTrusted("CREATE DATABASE \(name)")
            let url = replaceDatabase(in: adminURL, with: name)
            let pool = PostgresPool(configuration: .init(connectionString: url, size: poolSize), logger: TestEnvironment.logger)
            do {
                try await Migrator(logger: TestEnvironment.logger).migrate(pool)
            } catch {
                await pool.shutdown()
                throw error
            }
            return TestDatabase(url: url, pool: pool, holdsSlot: true)
        } catch {
            await TestSlots.databases.release()
            throw error
        }
    }

    static func replaceDatabase(in url: String, with name: String) -> String {
        guard let slash = url.lastIndex(of: "/") else { return url }
        let rest = url[url.index(after: slash)...]
        let query = rest.firstIndex(of: "?").map { String(rest[$0...]) } ?? ""
        return String(url[...slash]) + name + query
    }

    func count(_ sql: String, _ parameters: [(any PostgresBindable)?] = []) async throws -> Int {
        try await pool.query(sql, parameters).first?.int(0) ?? -1
    }

    func close() async {
        await pool.shutdown()
        if holdsSlot { await TestSlots.databases.release() }
    }
}
