import Foundation
import Logging
import LibPQClient

/// Applies the SQL files in `Migrations/` in version order. Safe to run
/// repeatedly and from several processes at once: each step runs in a
/// transaction holding an advisory lock, and records its version.
public struct Migrator: Sendable {
    public struct Migration: Sendable {
        public let version: Int
        public let name: String
        public let sql: String
    }

    public let migrations: [Migration]
    private let logger: Logger

    public init(logger: Logger) throws {
        self.logger = logger
        guard let directory = Bundle.module.url(forResource: "Migrations", withExtension: nil) else {
            throw MigrationError.missingFiles
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".sql") }.sorted()
        migrations = try files.map { file in
            guard let version = Int(file.prefix { $0.isNumber }) else { throw MigrationError.badFileName(file) }
            let sql = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            return Migration(version: version, name: file, sql: sql)
        }
    }

    public enum MigrationError: Error, CustomStringConvertible {
        case missingFiles
        case badFileName(String)
        public var description: String {
            switch self {
            case .missingFiles: "the migration files are missing from the bundle"
            case .badFileName(let name): "migration file \(name) does not start with a version number"
            }
        }
    }

    /// Returns the versions it applied (empty when the schema was current).
    @discardableResult
    public func migrate(_ pool: PostgresPool) async throws -> [Int] {
        var applied: [Int] = []
        for migration in migrations {
            let didApply = try await pool.transaction { connection -> Bool in
                try connection.query("SELECT pg_advisory_xact_lock($1)", [AdvisoryLock.schemaMigration.key])
                try connection.execute("""
                    CREATE TABLE IF NOT EXISTS schema_migrations (
                        version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
                    """)
                let done = try connection.query("SELECT 1 FROM schema_migrations WHERE version = $1", [migration.version])
                guard done.isEmpty else { return false }
                try connection.executeTrusted(migration.sql)
                try connection.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [migration.version, migration.name])
                return true
            }
            if didApply {
                logger.info("applied migration", metadata: ["db.migration": "\(migration.name)"])
                applied.append(migration.version)
            }
        }
        return applied
    }
}
