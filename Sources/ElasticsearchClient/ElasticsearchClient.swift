import Foundation
import JSONSupport
import Logging

/// An Elasticsearch 8 / OpenSearch failure. Never carries a request or response
/// body, so it can be logged and mapped to a client response safely.
public struct ElasticsearchError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// Could not connect, or the connection broke.
        case unavailable
        case timeout
        /// The cluster answered with an HTTP error status.
        case http
        /// The cluster answered something that is not the expected JSON.
        case malformedResponse
    }

    public let code: Code
    public let status: Int?
    /// `error.type` from the cluster's error body (for logs), never its reason text; for a transport
    /// failure `transport_<kind>`, so a log names `transport_tls` (a CA file or host name that
    /// retrying will not cure) apart from a cluster that is away.
    public let errorType: String?

    /// For other `SearchBackend`s (and their tests) to report failures the same way.
    public init(code: Code, status: Int?, errorType: String?) {
        self.code = code
        self.status = status
        self.errorType = errorType
    }

    public var description: String {
        var s = "ElasticsearchError(\(code.rawValue)"
        if let status { s += ", status \(status)" }
        if let errorType { s += ", \(errorType)" }
        return s + ")"
    }

    /// Worth retrying later: the cluster is away, overloaded or timing out.
    public var isTransient: Bool {
        switch code {
        case .unavailable, .timeout: true
        case .http: status == 429 || (status ?? 0) >= 500
        case .malformedResponse: false
        }
    }
}

/// The subset of the Elasticsearch HTTP API the order system needs, portable
/// between Elasticsearch 8 and OpenSearch (see ES-COMPAT.md): plain JSON media
/// types, status-code based classification, explicit index names.
public final class ElasticsearchClient: Sendable {
    public struct Configuration: Sendable {
        public var baseURL: String
        public var apiKey: String?
        public var username: String?
        public var password: String?
        public var caFile: String?
        public var connectTimeout: Duration = .seconds(2)
        public var requestTimeout: Duration = .seconds(30)
        public var lowSpeedTime: Duration = .seconds(20)
        public var connections: Int = 4
        public var maxQueued: Int = 256
        public var queueTimeout: Duration = .seconds(5)

        /// From the contract's variables: `ELASTICSEARCH_URL`, `ELASTICSEARCH_API_KEY`,
        /// `ELASTICSEARCH_USERNAME` + `ELASTICSEARCH_PASSWORD`, `ELASTICSEARCH_CA_CERT`.
        public init(environment: [String: String], connections: Int = 4) {
            func value(_ key: String) -> String? { environment[key].flatMap { $0.isEmpty ? nil : $0 } }
            self.init(baseURL: value("ELASTICSEARCH_URL") ?? "http://127.0.0.1:9200", apiKey: value("ELASTICSEARCH_API_KEY"),
                      username: value("ELASTICSEARCH_USERNAME"), password: value("ELASTICSEARCH_PASSWORD"),
                      caFile: value("ELASTICSEARCH_CA_CERT"))
            self.connections = connections
            func milliseconds(_ key: String) -> Duration? { value(key).flatMap(Int.init).flatMap { $0 > 0 ? .milliseconds($0) : nil } }
            connectTimeout = milliseconds("ES_CONNECT_TIMEOUT_MS") ?? connectTimeout
            requestTimeout = milliseconds("ES_REQUEST_TIMEOUT_MS") ?? requestTimeout
            lowSpeedTime = milliseconds("ES_LOW_SPEED_TIME_MS") ?? lowSpeedTime
            queueTimeout = milliseconds("ES_QUEUE_TIMEOUT_MS") ?? queueTimeout
            maxQueued = value("ES_MAX_QUEUED_REQUESTS").flatMap(Int.init).flatMap { $0 >= 0 ? $0 : nil } ?? maxQueued
        }

        public init(baseURL: String, apiKey: String? = nil, username: String? = nil, password: String? = nil, caFile: String? = nil) {
            self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
            self.apiKey = apiKey
            self.username = username
            self.password = password
            self.caFile = caFile
        }
    }

    public let configuration: Configuration
    let http: CurlHTTPClient
    private let defaultHeaders: [(String, String)]

    public init(configuration: Configuration) {
        self.configuration = configuration
        var httpConfiguration = CurlHTTPClient.Configuration()
        httpConfiguration.connectTimeout = configuration.connectTimeout
        httpConfiguration.requestTimeout = configuration.requestTimeout
        httpConfiguration.caFile = configuration.caFile
        httpConfiguration.threads = configuration.connections
        httpConfiguration.lowSpeedTime = configuration.lowSpeedTime
        httpConfiguration.maxQueued = configuration.maxQueued
        httpConfiguration.queueTimeout = configuration.queueTimeout
        if configuration.apiKey == nil, let user = configuration.username, let password = configuration.password {
            httpConfiguration.basicAuth = .init(username: user, password: password)
        }
        http = CurlHTTPClient(configuration: httpConfiguration)
        defaultHeaders = Self.authorizationHeaders(configuration)
    }

    /// `Authorization: ApiKey <base64(id:key)>` when an API key is configured
    /// (basic auth is handled by libcurl itself).
    static func authorizationHeaders(_ configuration: Configuration) -> [(String, String)] {
        guard let apiKey = configuration.apiKey else { return [] }
        return [("Authorization", "ApiKey \(apiKey)")]
    }

    /// See `CurlHTTPClient.shutdown(patience:)`: a stopping process does not wait out abandoned transfers.
    public func shutdown(patience: Duration? = nil) async { await http.shutdown(patience: patience) }

    // MARK: - raw requests

    /// Sends a request and returns status and body; HTTP error statuses are
    /// returned, transport failures thrown.
    public func send(_ method: String, _ path: String, json body: [UInt8]? = nil, contentType: String = "application/json",
                     timeout: Duration? = nil) async throws(ElasticsearchError) -> HTTPResponse {
        var headers = defaultHeaders
        if body != nil { headers.append(("Content-Type", contentType)) }
        do {
            return try await http.execute(method: method, url: configuration.baseURL + path, headers: headers, body: body, timeout: timeout)
        } catch let error as TransportError {
            throw ElasticsearchError(code: error.kind == .timeout ? .timeout : .unavailable, status: nil,
                                     errorType: "transport_\(error.kind.rawValue)")
        } catch {
            throw ElasticsearchError(code: .unavailable, status: nil, errorType: nil)
        }
    }

    /// Sends a request and parses a 2xx JSON answer; other statuses throw `.http`.
    public func request(_ method: String, _ path: String, json body: [UInt8]? = nil, timeout: Duration? = nil) async throws(ElasticsearchError) -> JSONValue {
        let response = try await send(method, path, json: body, timeout: timeout)
        guard (200..<300).contains(response.status) else { throw Self.httpError(response) }
        do { return try JSONParser.parse(response.body) } catch {
            throw ElasticsearchError(code: .malformedResponse, status: response.status, errorType: nil)
        }
    }

    static func httpError(_ response: HTTPResponse) -> ElasticsearchError {
        let parsed = try? JSONParser.parse(response.body)
        let type = parsed?["error"]?["type"]?.stringValue
        return ElasticsearchError(code: .http, status: response.status, errorType: type)
    }

    // MARK: - cluster

    /// What a read of an index (or alias) answered.
    public enum ReadProbe: Sendable, Equatable {
        /// It exists and these credentials may read it.
        case readable
        /// The cluster answered that it does not exist (yet).
        case missing
        /// No answer in time, or any other answer (refused credentials, a sick cluster).
        case failed
    }

    /// Reads `index` (an alias) with these credentials: a count, which the `read` privilege allows,
    /// where `GET /` needs the cluster `monitor` privilege that a least-privilege API key lacks.
    public func probe(_ index: String) async -> ReadProbe { await probe(index, timeout: .seconds(2)) }

    /// `probe(_:)` with a wait of the caller's choosing.
    public func probe(_ index: String, timeout: Duration) async -> ReadProbe {
        switch try? await send("GET", "/\(Self.escape(index))/_count", timeout: timeout).status {
        case 200: .readable
        case 404: .missing
        default: .failed
        }
    }

    /// Whether the cluster answers at all: an index that does not exist yet (404) counts, as for a
    /// writer that creates it.
    public func ping(_ index: String) async -> Bool { await probe(index) != .failed }

    /// `ping(_:)` with a wait of the caller's choosing.
    public func ping(_ index: String, timeout: Duration) async -> Bool { await probe(index, timeout: timeout) != .failed }

    public struct ClusterInfo: Sendable, Equatable {
        public enum Flavour: String, Sendable { case elasticsearch, opensearch }
        public let flavour: Flavour
        public let version: String
    }

    /// `GET /`: which product answers. OpenSearch says `version.distribution:
    /// "opensearch"`; Elasticsearch has no such field (ES-COMPAT §1.1). The
    /// `X-Elastic-Product` header is not trusted: some OpenSearch-compatible servers send it.
    public func clusterInfo() async throws(ElasticsearchError) -> ClusterInfo {
        let root = try await request("GET", "/")
        let version = root["version"]?["number"]?.stringValue ?? "unknown"
        let flavour: ClusterInfo.Flavour = root["version"]?["distribution"]?.stringValue == "opensearch" ? .opensearch : .elasticsearch
        return ClusterInfo(flavour: flavour, version: version)
    }

    // MARK: - indices and aliases

    public func indexExists(_ name: String) async throws(ElasticsearchError) -> Bool {
        let response = try await send("HEAD", "/\(Self.escape(name))")
        switch response.status {
        case 200: return true
        case 404: return false
        default: throw Self.httpError(response)
        }
    }

    /// Creates an index; returns false when it already exists.
    @discardableResult
    public func createIndex(_ name: String, body: [UInt8], timeout: Duration? = nil) async throws(ElasticsearchError) -> Bool {
        let response = try await send("PUT", "/\(Self.escape(name))", json: body, timeout: timeout)
        if (200..<300).contains(response.status) { return true }
        if response.status == 400, Self.httpError(response).errorType == "resource_already_exists_exception" { return false }
        throw Self.httpError(response)
    }

    /// Deletes one index by exact name (never a wildcard); false if it did not exist.
    @discardableResult
    public func deleteIndex(_ name: String, timeout: Duration? = nil) async throws(ElasticsearchError) -> Bool {
        precondition(!name.contains("*") && !name.contains(",") && name != "_all", "indices are deleted by exact name only")
        let response = try await send("DELETE", "/\(Self.escape(name))", timeout: timeout)
        if (200..<300).contains(response.status) { return true }
        if response.status == 404 { return false }
        throw Self.httpError(response)
    }

    /// Concrete indices the alias points at (empty when the alias does not exist).
    public func aliasTargets(_ alias: String, timeout: Duration? = nil) async throws(ElasticsearchError) -> [String] {
        let response = try await send("GET", "/_alias/\(Self.escape(alias))", timeout: timeout)
        if response.status == 404 { return [] }
        guard response.status == 200 else { throw Self.httpError(response) }
        guard case .object(let object)? = try? JSONParser.parse(response.body) else {
            throw ElasticsearchError(code: .malformedResponse, status: 200, errorType: nil)
        }
        return object.keys.sorted()
    }

    public enum AliasAction: Sendable, Encodable {
        /// `remove` with `must_exist: true`, so a concurrent change fails the whole call.
        case remove(index: String, alias: String)
        case add(index: String, alias: String)

        private struct Target: Encodable {
            let index: String, alias: String
            var must_exist: Bool? = nil, is_write_index: Bool? = nil
        }

        public func encode(to encoder: any Encoder) throws {
            switch self {
            case .remove(let index, let alias): try ["remove": Target(index: index, alias: alias, must_exist: true)].encode(to: encoder)
            case .add(let index, let alias): try ["add": Target(index: index, alias: alias, is_write_index: true)].encode(to: encoder)
            }
        }
    }

    /// Applies all actions atomically in one `_aliases` call.
    public func updateAliases(_ actions: [AliasAction], timeout: Duration? = nil) async throws(ElasticsearchError) {
        _ = try await request("POST", "/_aliases", json: Self.encode(["actions": actions]), timeout: timeout)
    }

    /// Sets `index.refresh_interval` (`"-1"` pauses refreshes during a bulk load).
    public func setRefreshInterval(_ index: String, _ interval: String, timeout: Duration? = nil) async throws(ElasticsearchError) {
        _ = try await request("PUT", "/\(Self.escape(index))/_settings", json: Self.encode(["index": ["refresh_interval": interval]]),
                              timeout: timeout)
    }

    /// A small fixed-shape request body. (`JSONEncoder` cannot fail on these value types.)
    static func encode(_ body: some Encodable) -> [UInt8] {
        (try? Array(JSONEncoder().encode(body))) ?? []
    }

    /// Makes what was indexed searchable; `timeout` for a refresh after a large load, which a busy
    /// cluster can take longer to finish than a request timeout.
    public func refresh(_ index: String, timeout: Duration? = nil) async throws(ElasticsearchError) {
        _ = try await request("POST", "/\(Self.escape(index))/_refresh", timeout: timeout)
    }

    // MARK: - documents

    public func search(_ index: String, body: [UInt8], timeout: Duration? = nil) async throws(ElasticsearchError) -> JSONValue {
        try await request("POST", "/\(Self.escape(index))/_search", json: body, timeout: timeout)
    }

    public func count(_ index: String, query: JSONValue? = nil) async throws(ElasticsearchError) -> Int {
        let body: [UInt8]? = query.map { JSONValue.object(JSONObject([("query", $0)])).serializedBytes }
        let result = try await request("POST", "/\(Self.escape(index))/_count", json: body)
        guard let count = result["count"]?.intValue else { throw ElasticsearchError(code: .malformedResponse, status: 200, errorType: nil) }
        return count
    }

    /// The stored document's `_source` and `_version`, or nil when absent.
    public func get(_ index: String, id: String) async throws(ElasticsearchError) -> (source: JSONValue, version: Int64)? {
        let response = try await send("GET", "/\(Self.escape(index))/_doc/\(Self.escape(id))")
        if response.status == 404 { return nil }
        guard response.status == 200 else { throw Self.httpError(response) }
        guard let parsed = try? JSONParser.parse(response.body), let source = parsed["_source"],
              let version = parsed["_version"]?.int64Value
        else { throw ElasticsearchError(code: .malformedResponse, status: 200, errorType: nil) }
        return (source, version)
    }

    /// The stored `_version` of each of `ids` that exists, by one realtime `_mget` without sources:
    /// a page of ids costs one request instead of one GET each. An id whose shard failed throws
    /// (it would otherwise read as absent).
    public func versions(_ index: String, ids: [String], timeout: Duration? = nil) async throws(ElasticsearchError) -> [String: Int64] {
        guard !ids.isEmpty else { return [:] }
        let body = JSONValue.object(JSONObject([("ids", .array(ids.map { .string($0) }))])).serializedBytes
        let result = try await request("POST", "/\(Self.escape(index))/_mget?_source=false", json: body, timeout: timeout)
        guard let docs = result["docs"]?.arrayValue else { throw ElasticsearchError(code: .malformedResponse, status: 200, errorType: nil) }
        var versions: [String: Int64] = [:]
        for doc in docs {
            if let type = doc["error"]?["type"]?.stringValue { throw ElasticsearchError(code: .http, status: 200, errorType: type) }
            guard doc["found"]?.boolValue == true else { continue }
            guard let id = doc["_id"]?.stringValue, let version = doc["_version"]?.int64Value
            else { throw ElasticsearchError(code: .malformedResponse, status: 200, errorType: nil) }
            versions[id] = version
        }
        return versions
    }

    /// Percent-encodes a path segment (ids are opaque strings).
    public static func escape(_ segment: String) -> String {
        var out = ""
        for byte in segment.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".unicodeScalars)
                out.unicodeScalars.append("%")
                out.unicodeScalars.append(hex[Int(byte >> 4)])
                out.unicodeScalars.append(hex[Int(byte & 15)])
            }
        }
        return out
    }
}
