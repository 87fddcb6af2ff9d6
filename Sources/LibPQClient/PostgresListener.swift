import Logging
import NIOPosix
import Synchronization

/// LISTENs on a channel with its own connection and thread, and yields a value
/// each time a NOTIFY arrives (coalesced: many notifications wake a reader once).
/// Reconnects after the server restarts and yields once after reconnecting, since
/// notifications sent while disconnected are lost.
public final class PostgresListener: Sendable {
    private let connectionString: String
    private let channel: String
    private let logger: Logger
    private let stopped = Atomic<Bool>(false)
    private let thread = NIOThreadPool(numberOfThreads: 1)

    public init(connectionString: String, channel: String, logger: Logger) {
        precondition(channel.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }, "channel must be an identifier")
        self.connectionString = connectionString
        self.channel = channel
        self.logger = logger
        // Started here, never lazily: `stop()` from another task while `start()` is still spawning
        // the thread is a race NIOThreadPool does not survive (it traps; seen in a test run).
        thread.start()
    }

    /// Notifications as a stream; ends when `stop()` is called.
    public func notifications() -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let listen = "LISTEN \(channel)"
        thread.submit { [self] state in
            // Already stopped: NIO hands the item back at once, on the submitting thread.
            guard state == .active else { return continuation.finish() }
            var connection: LibPQConnection?
            while !stopped.load(ordering: .relaxed) {
                do {
                    if connection == nil {
                        let fresh = try LibPQConnection(connectionString: connectionString, applicationName: "orders-listener")
                        try fresh.executeTrusted(listen)
                        connection = fresh
                        continuation.yield()
                    }
                    if try !connection!.waitForNotifications(timeout: 0.5).isEmpty {
                        continuation.yield()
                    }
                } catch {
                    logger.warning("notification listener lost its connection", metadata: ["db.error": "\(error)"])
                    connection = nil
                    usleep(500_000)
                }
            }
            continuation.finish()
        }
        return stream
    }

    public func stop() async {
        stopped.store(true, ordering: .relaxed)
        try? await thread.shutdownGracefully()
    }
}
