import Foundation
import Logging
import Security
import TokenSigning

/// The environment variables every process reads (the contract's table).
/// The Elasticsearch connection variables are read in one place only,
/// `ElasticsearchClient.Configuration(environment:)`.
public struct ServiceConfiguration: Sendable {
    public var databaseURL: String
    public var ordersIndex: String
    public var writeAPIAddress: HostAndPort
    public var searchAPIAddress: HostAndPort
    public var indexerMetricsAddress: HostAndPort
    public var auth: AuthConfiguration
    public var httpLimits: HTTPServerLimits

    public static let defaults = ServiceConfiguration(environment: [:])

    public init(environment: [String: String]) {
        func value(_ key: String) -> String? {
            guard let v = environment[key], !v.isEmpty else { return nil }
            return v
        }
        databaseURL = value("DATABASE_URL") ?? "postgresql://orders@127.0.0.1:5432/orders"
        ordersIndex = value("ORDERS_INDEX") ?? "orders"
        writeAPIAddress = value("WRITE_API_ADDR").flatMap(HostAndPort.init) ?? HostAndPort(host: "127.0.0.1", port: 8080)
        searchAPIAddress = value("SEARCH_API_ADDR").flatMap(HostAndPort.init) ?? HostAndPort(host: "127.0.0.1", port: 8081)
        indexerMetricsAddress = value("INDEXER_METRICS_ADDR").flatMap(HostAndPort.init) ?? HostAndPort(host: "127.0.0.1", port: 8082)
        auth = AuthConfiguration(environment: environment)
        httpLimits = HTTPServerLimits(environment: environment)
    }
}

/// `host:port` (IPv6 hosts in brackets: `[::1]:8080`).
public struct HostAndPort: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Start-up checks of the executables: a configuration error is printed
/// (naming the variables, never their values) and the process exits 1.
public enum Startup {
    public static func require<T>(_ what: String, _ body: () async throws -> T) async -> T {
        do {
            return try await body()
        } catch {
            FileHandle.standardError.write(Data("error: \(what): \(error)\n".utf8))
            exit(1)
        }
    }

    /// The authentication mode; warns when it is disabled.
    public static func authMode(_ configuration: ServiceConfiguration, logger: Logger) async -> AuthConfiguration.Mode {
        let mode = await require("authentication") { try await configuration.auth.mode() }
        if case .disabled = mode { logger.warning("AUTH_DISABLED=true: every request acts as staff without a token (development only)") }
        return mode
    }

    public static func tokenSigner() async -> TokenSigner {
        await require("SIGNING_KEY") { try TokenSigner(environment: ProcessInfoEnvironment.all) }
    }
}
#if canImport(Glibc)
import Glibc
#endif

extension HostAndPort {
    /// A loopback port nobody listens on right now (for tests and benchmarks
    /// that start servers of their own).
    public static func freeLoopbackPort() -> Int {
        for _ in 0..<100 {
            // Below Linux's ephemeral range (32768+), where outgoing connections could take the port first.
            let port = Int.random(in: 20_000...32_000)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            close(fd)
            if bound == 0 { return port }
        }
        return 44_999
    }
}
