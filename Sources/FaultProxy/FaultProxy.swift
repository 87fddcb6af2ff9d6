import ElasticsearchClient
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// An HTTP proxy in front of Elasticsearch (or osmem-server, which never
/// fails on its own) that injects failures on a schedule: error statuses
/// such as 429 and 503, connection resets, and delays. Tests use it to
/// rehearse outages; operators can use it the same way.
public final class FaultProxy: Sendable {
    public enum Fault: Sendable, Equatable {
        /// Answer with this status and an Elasticsearch-shaped error body, without forwarding.
        case status(Int)
        /// Close the connection abruptly without answering.
        case reset
        /// Wait, then forward normally.
        case delay(Duration)
        /// Forward, but answer this status after this long instead of the upstream's answer: a
        /// gateway that stopped waiting while the request goes on upstream (504).
        case gaveUpWaiting(status: Int, after: Duration)
        /// Forward, then close the connection without answering: the request took effect upstream
        /// but the client never learns it (as when an answer is lost to a timeout).
        case dropAnswer
    }

    private struct Schedule {
        var queued: [Fault] = []
        /// Faults for the next requests whose `METHOD uri` starts with the given prefix, ahead of `queued`.
        var targeted: [(prefix: String, fault: Fault)] = []
        var persistent: Fault?
        /// Every n-th request gets `periodicFault`.
        var period = 0
        var periodicFault: Fault?
        var requests = 0
        var faultsInjected = 0
        /// Requests counted by the prefix of their `METHOD uri` (`countRequests(startingWith:)`).
        var counted: [String: Int] = [:]
    }

    private let upstream: String
    private let schedule = Mutex(Schedule())
    private let client: CurlHTTPClient
    private let logger: Logger
    private let channel = Mutex<(any Channel)?>(nil)

    /// `upstreamTimeout`: how long a forwarded request may take before the proxy answers 504 itself.
    /// Longer than any client of it waits (an indexer's bulk timeout grows to 16 × 30 s), so that
    /// the proxy is never the component that gives up: a soak's faults are the ones it injects.
    public init(upstream: String, upstreamTimeout: Duration = .seconds(600), logger: Logger) {
        self.upstream = upstream.hasSuffix("/") ? String(upstream.dropLast()) : upstream
        self.logger = logger
        // Upstream concurrency beyond what its clients use, and no queue deadline of its own: a proxy
        // that answered 502 "busy" while the cluster was merely slow would be a fault of its own
        // (a soak's indexers saw 17-25 s and 502s through an 8-thread proxy, 1-3 s direct). The same
        // goes for silence: libcurl's low-speed limit (20 s by default) cut every request a busy
        // osmem-server took longer than that to answer, and 30-minute soaks' indexers, taking the
        // 502 for an error answer, sent the same batches again while the server still did them.
        var configuration = CurlHTTPClient.Configuration()
        configuration.threads = 32
        configuration.requestTimeout = upstreamTimeout
        configuration.lowSpeedTime = upstreamTimeout
        configuration.queueTimeout = upstreamTimeout
        client = CurlHTTPClient(configuration: configuration)
    }

    // MARK: - schedule

    /// The next `count` requests get `fault` (queued after earlier ones).
    public func inject(_ fault: Fault, count: Int = 1) {
        schedule.withLock { $0.queued.append(contentsOf: Array(repeating: fault, count: count)) }
    }

    /// The next `count` requests whose `METHOD uri` starts with `prefix` (say `"POST /_aliases"`)
    /// get `fault`; other requests pass by.
    public func inject(_ fault: Fault, count: Int = 1, onRequestsStartingWith prefix: String) {
        schedule.withLock { $0.targeted.append(contentsOf: Array(repeating: (prefix, fault), count: count)) }
    }

    /// Every request gets `fault` until cleared with nil.
    public func setPersistent(_ fault: Fault?) { schedule.withLock { $0.persistent = fault } }

    /// Every `period`-th request gets `fault` (0 turns it off).
    public func setPeriodic(every period: Int, _ fault: Fault?) {
        schedule.withLock {
            $0.period = period
            $0.periodicFault = fault
        }
    }

    public var requestCount: Int { schedule.withLock { $0.requests } }

    /// From now on, counts the requests whose `METHOD uri` starts with `prefix` (say `"POST /_bulk"`).
    public func countRequests(startingWith prefix: String) { schedule.withLock { $0.counted[prefix] = 0 } }

    /// Requests counted for `prefix` since `countRequests(startingWith:)`.
    public func requestCount(startingWith prefix: String) -> Int { schedule.withLock { $0.counted[prefix] ?? 0 } }
    public var faultsInjected: Int { schedule.withLock { $0.faultsInjected } }

    func nextFault(for request: String) -> Fault? {
        schedule.withLock { s in
            s.requests += 1
            for prefix in s.counted.keys where request.hasPrefix(prefix) { s.counted[prefix, default: 0] += 1 }
            var fault: Fault?
            if let i = s.targeted.firstIndex(where: { request.hasPrefix($0.prefix) }) { fault = s.targeted.remove(at: i).fault }
            else if !s.queued.isEmpty { fault = s.queued.removeFirst() }
            else if let p = s.persistent { fault = p }
            else if s.period > 0, s.requests % s.period == 0 { fault = s.periodicFault }
            if fault != nil { s.faultsInjected += 1 }
            return fault
        }
    }

    // MARK: - serving

    /// Binds and serves in the background; returns the bound port.
    public func start(host: String = "127.0.0.1", port: Int = 0) async throws -> Int {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: channel)
                }
            }
        channel.withLock { $0 = server.channel }
        let boundPort = server.channel.localAddress?.port ?? 0
        Task {
            try? await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { connections in
                    for try await connection in connections {
                        group.addTask { await self.serve(connection) }
                    }
                }
            }
        }
        return boundPort
    }

    public func stop() async {
        let server = channel.withLock { $0 }
        try? await server?.close()
        await client.shutdown()
    }

    /// Sends the request upstream, and cancels it when the client hangs up first: a client that
    /// gave up (a hand-back deadline) must not leave its request holding an upstream slot.
    private func forward(_ method: String, _ uri: String, headers: [(String, String)], body: [UInt8]?,
                         downstream: any Channel) async throws -> HTTPResponse {
        try await withThrowingTaskGroup(of: HTTPResponse?.self) { group in
            group.addTask { try await self.client.execute(method: method, url: self.upstream + uri, headers: headers, body: body) }
            group.addTask {
                // Polled: waiting on `closeFuture` cannot be cancelled once the answer is in.
                while downstream.isActive { try await Task.sleep(for: .milliseconds(100)) }
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let response = first else { throw CancellationError() }
            return response
        }
    }

    private func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async {
        let underlying = connection.channel
        _ = try? await connection.executeThenClose { inbound, outbound -> Void in
            var head: HTTPRequestHead?
            var body: [UInt8] = []
            for try await part in inbound {
                switch part {
                case .head(let h):
                    head = h
                    body.removeAll()
                case .body(let buffer):
                    body.append(contentsOf: buffer.readableBytesView)
                case .end:
                    guard let request = head else { continue }
                    let fault = nextFault(for: "\(request.method.rawValue) \(request.uri)")
                    switch fault {
                    case .reset?:
                        // Drop the connection mid-request: the client sees it closed with no answer.
                        try? await underlying.close()
                        return
                    case .status(let status)?:
                        try await writeInjected(outbound, status: status, keepAlive: request.isKeepAlive)
                        continue
                    case .delay(let duration)?:
                        try await Task.sleep(for: duration)
                    case .gaveUpWaiting(let status, let after)?:
                        // The upstream request goes on unwatched, as behind a gateway that timed out.
                        let method = request.method.rawValue, uri = request.uri, headers = Self.forwardedHeaders(request)
                        let sent = Self.forwardedBody(request, body)
                        Task { _ = try? await self.client.execute(method: method, url: self.upstream + uri, headers: headers, body: sent) }
                        try await Task.sleep(for: after)
                        try await writeInjected(outbound, status: status, keepAlive: request.isKeepAlive)
                        continue
                    case .dropAnswer?, nil:
                        break
                    }
                    let forwarded: HTTPResponse
                    do {
                        forwarded = try await forward(request.method.rawValue, request.uri, headers: Self.forwardedHeaders(request),
                                                      body: Self.forwardedBody(request, body), downstream: underlying)
                    } catch {
                        // As a load balancer answers: 504 when it stopped waiting, 502 when it got no answer.
                        let status = (error as? TransportError)?.kind == .timeout ? 504 : 502
                        try await write(outbound, status: status, headers: [("content-type", "application/json")],
                                        body: Array("{\"error\":\"upstream unavailable\",\"status\":\(status)}".utf8), keepAlive: false)
                        return
                    }
                    if fault == .dropAnswer {
                        try? await underlying.close()
                        return
                    }
                    let headers = forwarded.headers.filter { !["content-length", "connection", "transfer-encoding", "keep-alive"].contains($0.0) }
                    try await write(outbound, status: forwarded.status, headers: headers, body: request.method == .HEAD ? [] : forwarded.body,
                                    keepAlive: request.isKeepAlive, contentLength: forwarded.header("content-length"))
                }
            }
        }
    }

    private static func forwardedHeaders(_ request: HTTPRequestHead) -> [(String, String)] {
        request.headers.filter { !["host", "content-length", "connection", "expect", "transfer-encoding"].contains($0.name.lowercased()) }
            .map { ($0.name, $0.value) }
    }

    private static func forwardedBody(_ request: HTTPRequestHead, _ body: [UInt8]) -> [UInt8]? {
        request.method == .GET || request.method == .HEAD ? nil : body
    }

    /// An Elasticsearch-shaped error answer the upstream never saw.
    private func writeInjected(_ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, status: Int, keepAlive: Bool) async throws {
        let type = status == 429 ? "es_rejected_execution_exception" : "fault_injected_exception"
        let text = "{\"error\":{\"root_cause\":[{\"type\":\"\(type)\",\"reason\":\"injected by fault-proxy\"}],\"type\":\"\(type)\",\"reason\":\"injected by fault-proxy\"},\"status\":\(status)}"
        try await write(outbound, status: status, headers: [("content-type", "application/json")], body: Array(text.utf8), keepAlive: keepAlive)
    }

    private func write(_ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, status: Int, headers: [(String, String)],
                       body: [UInt8], keepAlive: Bool, contentLength: String? = nil) async throws {
        var fields = HTTPHeaders(headers)
        fields.replaceOrAdd(name: "content-length", value: contentLength ?? String(body.count))
        fields.replaceOrAdd(name: "connection", value: keepAlive ? "keep-alive" : "close")
        try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: fields)))
        if !body.isEmpty { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
        try await outbound.write(.end(nil))
    }
}
