import ElasticsearchClient
import Hummingbird
import JSONSupport
import Synchronization
import Testing
import ServiceTesting

#if canImport(Glibc)
import Glibc
#endif

/// The libcurl client with no cluster: authentication headers, per-item bulk
/// classification including 429, error values that carry no request data, and
/// the bounded queue and low-speed limit. Local stubs stand in for the cluster.
@Suite struct ElasticsearchClientTests {
    final class Seen: Sendable {
        let headers = Mutex<[String: String]>([:])
        let body = Mutex<[UInt8]>([])
    }

    func stub(_ seen: Seen, bulkResponse: String) async throws -> (ElasticsearchClient.Configuration, Task<Void, any Error>) {
        let router = Router()
        router.get("/") { request, _ in
            seen.headers.withLock { $0 = ["authorization": request.headers[.authorization] ?? ""] }
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "{}")))
        }
        router.get("/orders/_count") { request, _ in
            seen.headers.withLock { $0 = ["authorization": request.headers[.authorization] ?? ""] }
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"count":0}"#)))
        }
        router.get("/forbidden/_count") { _, _ in
            Response(status: .forbidden, headers: [.contentType: "application/json"],
                     body: .init(byteBuffer: ByteBuffer(string: #"{"error":{"type":"security_exception"},"status":403}"#)))
        }
        router.post("/_bulk") { request, _ in
            let body = try await request.body.collect(upTo: 1 << 20)
            seen.headers.withLock { $0 = ["content-type": request.headers[.contentType] ?? "", "query": request.uri.query ?? ""] }
            seen.body.withLock { $0 = Array(body.readableBytesView) }
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: bulkResponse)))
        }
        router.post("/orders/_mget") { request, _ in
            let body = try await request.body.collect(upTo: 1 << 20)
            seen.headers.withLock { $0 = ["query": request.uri.query ?? ""] }
            seen.body.withLock { $0 = Array(body.readableBytesView) }
            let docs = #"{"docs":[{"_id":"o1","_index":"orders_v1","_version":4294967298,"found":true},{"_id":"o2","_index":"orders_v1","found":false}]}"#
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: docs)))
        }
        router.post("/broken/_mget") { _, _ in
            let docs = #"{"docs":[{"_id":"o1","_index":"broken_v1","error":{"type":"no_shard_available_action_exception","reason":"x"}}]}"#
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: docs)))
        }
        router.post("/secret/_search") { _, _ in
            Response(status: .badRequest, headers: [.contentType: "application/json"],
                     body: .init(byteBuffer: ByteBuffer(string: #"{"error":{"type":"parsing_exception","reason":"leaked SECRET-QUERY"},"status":400}"#)))
        }
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) })
        let task = Task { try await app.run() }
        var iterator = stream.makeAsyncIterator()
        guard let port = await iterator.next() else { throw CancellationError() }
        return (.init(baseURL: "http://127.0.0.1:\(port)/"), task)
    }

    @Test func sendsApiKeyOrBasicAuthorization() async throws {
        let seen = Seen()
        let (base, task) = try await stub(seen, bulkResponse: "{}")
        defer { task.cancel() }
        var withKey = base
        withKey.apiKey = "aWQ6c2VjcmV0"
        let keyed = ElasticsearchClient(configuration: withKey)
        #expect(await keyed.ping("orders"))
        #expect(seen.headers.withLock { $0["authorization"] } == "ApiKey aWQ6c2VjcmV0")
        // Readiness is a read of the alias (the `read` privilege), not `GET /` (cluster `monitor`):
        // an index not created yet still answers; credentials the cluster refuses do not.
        #expect(await keyed.ping("not-created-yet"))
        #expect(await !keyed.ping("forbidden"))
        var withBasic = base
        withBasic.username = "elastic"
        withBasic.password = "changeme"
        let basic = ElasticsearchClient(configuration: withBasic)
        #expect(await basic.ping("orders"))
        #expect(seen.headers.withLock { $0["authorization"] } == "Basic ZWxhc3RpYzpjaGFuZ2VtZQ==")
        let anonymous = ElasticsearchClient(configuration: base)
        #expect(await anonymous.ping("orders"))
        #expect(seen.headers.withLock { $0["authorization"] } == "")
        for client in [keyed, basic, anonymous] { await client.shutdown() }
    }

    /// A TLS failure (here: HTTPS to a plain-HTTP server) is named in the error, apart from a cluster that is away.
    @Test func aTLSFailureNamesItself() async throws {
        let (base, task) = try await stub(Seen(), bulkResponse: "{}")
        defer { task.cancel() }
        var tls = base
        tls.baseURL = base.baseURL.replacingOccurrences(of: "http://", with: "https://")
        let client = ElasticsearchClient(configuration: tls)
        do {
            _ = try await client.count("orders")
            Issue.record("a TLS handshake with a plain-HTTP server succeeded")
        } catch {
            #expect(error.code == .unavailable && error.errorType == "transport_tls", "\(error)")
        }
        await client.shutdown()
    }

    @Test func readsVersionsOfManyIdsInOneSourcelessMultiGet() async throws {
        let seen = Seen()
        let (base, task) = try await stub(seen, bulkResponse: "{}")
        defer { task.cancel() }
        let client = ElasticsearchClient(configuration: base)
        #expect(try await client.versions("orders", ids: ["o1", "o2"]) == ["o1": 4_294_967_298])
        #expect(seen.headers.withLock { $0["query"] } == "_source=false")
        #expect(try JSONParser.parse(seen.body.withLock { $0 }) == ["ids": ["o1", "o2"]])
        // A document whose shard failed is not "absent": reading it as absent would make verify repair it.
        await #expect(throws: ElasticsearchError.self) { try await client.versions("broken", ids: ["o1"]) }
        #expect(try await client.versions("orders", ids: []) == [:])
        await client.shutdown()
    }

    @Test func classifiesBulkItemsByStatusAndSendsNDJSON() async throws {
        let seen = Seen()
        let response = #"{"errors":true,"items":[{"index":{"status":201}},{"index":{"status":409,"error":{"type":"version_conflict_engine_exception"}}},{"index":{"status":400,"error":{"type":"document_parsing_exception"}}},{"index":{"status":429,"error":{"type":"es_rejected_execution_exception"}}},{"index":{"status":404,"error":{"type":"index_not_found_exception"}}},{"delete":{"status":404}},{"index":{"status":503}},{"index":{"status":403,"error":{"type":"cluster_block_exception"}}},{"index":{"status":401,"error":{"type":"security_exception"}}}]}"#
        let (base, task) = try await stub(seen, bulkResponse: response)
        defer { task.cancel() }
        let client = ElasticsearchClient(configuration: base)
        var request = BulkRequest()
        for i in 0..<6 { request.index("orders", id: "o\(i)", version: Int64(i + 1), requireAlias: true) { $0.value(["n": .int(i)]) } }
        request.delete("orders_v1", id: "gone", version: 9)
        for i in 6..<8 { request.index("orders", id: "o\(i)", version: 1, requireAlias: true) { $0.value(["n": .int(i)]) } }
        let outcomes = try await client.bulk(request)
        // Only the document's own fault (400) is a dead letter; a write block or missing privilege (403/401) is refused work.
        #expect(outcomes == [.applied, .stale, .rejected(status: 400, errorType: "document_parsing_exception"), .retry(status: 429),
                             .indexMissing, .applied, .retry(status: 503), .refused(status: 403, errorType: "cluster_block_exception"),
                             .refused(status: 401, errorType: "security_exception")])
        #expect(seen.headers.withLock { $0["content-type"] } == "application/x-ndjson")
        let body = String(decoding: seen.body.withLock { $0 }, as: UTF8.self)
        #expect(body.hasSuffix("\n"))
        #expect(body.split(separator: "\n").count == 17)
        #expect(body.hasPrefix(#"{"index":{"_index":"orders","_id":"o0","version":1,"version_type":"external","require_alias":true}}"#))
        await client.shutdown()
    }

    @Test func errorsNeverCarryRequestsOrReasons() async throws {
        let (base, task) = try await stub(Seen(), bulkResponse: "{}")
        defer { task.cancel() }
        let client = ElasticsearchClient(configuration: base)
        do {
            _ = try await client.search("secret", body: Array(#"{"query":{"match":{"note":"SECRET-QUERY"}}}"#.utf8))
            Issue.record("expected an error")
        } catch {
            #expect(error.status == 400)
            #expect(error.errorType == "parsing_exception")
            #expect(!"\(error)".contains("SECRET"))
        }
        let unreachable = ElasticsearchClient(configuration: .init(baseURL: "http://127.0.0.1:1"))
        await #expect(throws: ElasticsearchError.self) { try await unreachable.count("orders") }
        await client.shutdown()
        await unreachable.shutdown()
    }

    /// A cancelled caller (a stopping indexer) gets CancellationError at once, not after the request timeout.
    @Test func aCancelledRequestReturnsAtOnce() async throws {
        // Closed by hand below, before the client shuts down (not deferred: that would wait out the transfer).
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = LoopbackPort.address(port: 0)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(fd, 16)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        var configuration = CurlHTTPClient.Configuration()
        configuration.requestTimeout = .seconds(60)
        configuration.lowSpeedTime = .seconds(60)
        let http = CurlHTTPClient(configuration: configuration)
        let request = Task { try await http.execute(method: "GET", url: "http://127.0.0.1:\(UInt16(bigEndian: address.sin_port))/") }
        try await Task.sleep(for: .milliseconds(300))
        let started = ContinuousClock.now
        request.cancel()
        await #expect(throws: CancellationError.self) { try await request.value }
        #expect(ContinuousClock.now - started < .seconds(2))
        close(fd)  // the transfer in the background ends; the pool can shut down
        await http.shutdown()
    }

    @Test func curlQueueIsBoundedAndStuckPeersHitTheLowSpeedLimit() async throws {
        // A peer that accepts and never answers.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = LoopbackPort.address(port: 0)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(fd, 16)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        let url = "http://127.0.0.1:\(UInt16(bigEndian: address.sin_port))/"
        var configuration = CurlHTTPClient.Configuration()
        configuration.threads = 1
        configuration.maxQueued = 0
        configuration.requestTimeout = .seconds(60)
        configuration.lowSpeedTime = .seconds(2)
        let http = CurlHTTPClient(configuration: configuration)
        do {
            let stuck = Task { try await http.execute(method: "GET", url: url) }
            try await Task.sleep(for: .milliseconds(300))
            await #expect { try await http.execute(method: "GET", url: url) } throws: { ($0 as? TransportError)?.kind == .busy }
            let started = ContinuousClock.now
            await #expect { try await stuck.value } throws: { ($0 as? TransportError)?.kind == .timeout }
            #expect(ContinuousClock.now - started < .seconds(30))  // the low-speed limit, not the 60 s request timeout
        } catch {
            await http.shutdown()
            throw error
        }
        await http.shutdown()
    }
}
