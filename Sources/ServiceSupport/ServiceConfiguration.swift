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

/// The process environment (one place that reads it).
public enum ProcessInfoEnvironment {
    public static func value(_ key: String) -> String? { ProcessInfo.processInfo.environment[key] }
    public static var all: [String: String] { ProcessInfo.processInfo.environment }
}
