import Hummingbird
import Logging

/// A stand-in search cluster that accepts every `_bulk` at once: measures
/// the indexer's own ceiling, with Elasticsearch's cost taken out.
enum NullSink {
    static func start(alias: String, logger: Logger) async throws -> (port: Int, task: Task<Void, any Error>) {
        let router = Router()
        router.get("/") { _, _ in Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{}"))) }
        router.get("/_alias/:alias") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"],
                     body: .init(byteBuffer: ByteBuffer(string: "{\"\(alias)_v1\":{\"aliases\":{\"\(alias)\":{}}}}")))
        }
        router.post("/_bulk") { request, _ in
            // Read (and drop) the whole body, as a server would.
            for try await _ in request.body {}
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{\"errors\":false}")))
        }
        return try await StubServer.start(router, name: "null-sink", logger: logger)
    }
}

/// An in-process HTTP stub on a free port, stopped by cancelling its task.
enum StubServer {
    static func start(_ router: Router<BasicRequestContext>, name: String, logger: Logger) async throws
        -> (port: Int, task: Task<Void, any Error>) {
        // Cancellation is how a stub stops, and Hummingbird logs it at error level ("Waiting on
        // child channel: CancellationError()"): only critical messages would be news.
        var quiet = logger
        quiet.logLevel = .critical
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: name),
                              onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) }, logger: quiet)
        let task = Task { try await app.run() }
        var iterator = stream.makeAsyncIterator()
        guard let port = await iterator.next() else { throw BenchError("\(name) did not start") }
        return (port, task)
    }
}
