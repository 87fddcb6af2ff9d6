import Logging
import NIOPosix
import Synchronization

public struct HTTPResponse: Sendable {
    public let status: Int
    /// Header names in lower case.
    public let headers: [(String, String)]
    public let body: [UInt8]

    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.0 == lower }?.1
    }

    public var bodyString: String { String(decoding: body, as: UTF8.self) }
}

/// A failure below HTTP: no connection, timeout, TLS. Carries no request data.
public struct TransportError: Error, Sendable, CustomStringConvertible {
    /// `busy`: the client's queue is full, or the request waited too long for a thread.
    public enum Kind: String, Sendable { case connection, timeout, tls, busy }
    public let kind: Kind
    public let curlCode: Int
    public var description: String { "TransportError(\(kind.rawValue), curl code \(curlCode))" }
}

/// A small blocking-libcurl HTTP client whose calls run on its own threads
/// (never on Swift's cooperative pool). Easy handles are pooled so TCP
/// connections are kept alive between requests.
public final class CurlHTTPClient: Sendable {
    public struct Configuration: Sendable {
        public var connectTimeout: Duration = .seconds(2)
        public var requestTimeout: Duration = .seconds(30)
        /// Aborts a transfer that moves less than 1 byte/s for this long.
        public var lowSpeedTime: Duration = .seconds(20)
        public var caFile: String?
        public var basicAuth: BasicAuth?
        public var threads: Int = 4
        /// Requests that may wait for a thread; beyond that `execute` fails at once with `.busy`.
        public var maxQueued: Int = 256
        /// A request still waiting for a thread after this long fails with `.busy` instead of running late.
        public var queueTimeout: Duration = .seconds(5)

        public struct BasicAuth: Sendable {
            public var username: String
            public var password: String
            public init(username: String, password: String) {
                self.username = username
                self.password = password
            }
        }

        public init() {}
    }

    private let configuration: Configuration
    private let threadPool: NIOThreadPool
    private let handles = Mutex<[UnsafeSendableBox<CurlEasy>]>([])
    /// Requests running or waiting for a thread.
    private let admitted = Mutex(0)

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
        threadPool = NIOThreadPool(numberOfThreads: max(1, configuration.threads))
        threadPool.start()
    }

    /// Stops the client's threads once their transfers end. A transfer whose caller was cancelled
    /// runs on to its own end (libcurl cannot be interrupted from here), so a stopping process
    /// passes a `patience`: after it, this returns anyway and the threads end with the process.
    public func shutdown(patience: Duration? = nil) async {
        let stopped = Mutex(false)
        let pool = threadPool
        Task {
            try? await pool.shutdownGracefully()
            stopped.withLock { $0 = true }
        }
        let deadline = patience.map { ContinuousClock.now + $0 }
        while !stopped.withLock({ $0 }) {
            if let deadline, ContinuousClock.now >= deadline { return }
            try? await Task.sleep(for: .milliseconds(10))
        }
        handles.withLock { $0.removeAll() }
    }

    public func execute(
        method: String, url: String, headers: [(String, String)] = [], body: [UInt8]? = nil, timeout: Duration? = nil
    ) async throws -> HTTPResponse {
        let configuration = self.configuration
        let timeoutMs = Self.milliseconds(timeout ?? configuration.requestTimeout)
        let connectMs = Self.milliseconds(configuration.connectTimeout)
        // A server busy with a request sends nothing until it is done, which the low-speed limit
        // cannot tell from a dead peer: a caller that asks for a longer wait gets it.
        let lowSpeedSeconds = max(1, Int(max(configuration.lowSpeedTime, timeout ?? .zero).components.seconds))
        let capacity = configuration.threads + configuration.maxQueued
        guard admitted.withLock({ count in
            guard count < capacity else { return false }
            count += 1
            return true
        }) else { throw TransportError(kind: .busy, curlCode: 0) }
        let deadline = ContinuousClock.now + configuration.queueTimeout
        let outcome = PendingResponse()
        // The transfer runs to its end on a pool thread (libcurl cannot be interrupted from here),
        // but a cancelled caller does not wait for it: a stopping process is not held up by a
        // slow server for the whole request timeout.
        Task { [self] in
            defer { admitted.withLock { $0 -= 1 } }
            do {
                let response = try await threadPool.runIfActive { [self] in
                    guard ContinuousClock.now <= deadline else { throw TransportError(kind: .busy, curlCode: 0) }
                    let box = handles.withLock { $0.popLast() } ?? UnsafeSendableBox(CurlEasy())
                    let result = box.value.perform(
                        method: method, url: url, headers: headers, body: body, connectTimeoutMs: connectMs, timeoutMs: timeoutMs,
                        lowSpeedSeconds: lowSpeedSeconds, tls: .init(caFile: configuration.caFile),
                        basicAuth: configuration.basicAuth.map { ($0.username, $0.password) }
                    )
                    handles.withLock { $0.append(box) }
                    return try result.get()
                }
                outcome.finish(.success(response))
            } catch {
                outcome.finish(.failure(error))
            }
        }
        return try await outcome.value()
    }

    static func milliseconds(_ d: Duration) -> Int {
        Int(d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000)
    }
}

/// A handle that is only ever used by one thread at a time: it moves between the
/// pool's threads through the mutex-guarded free list above.
struct UnsafeSendableBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// The answer of one request, delivered once: to the caller, or dropped if the caller was cancelled first.
final class PendingResponse: Sendable {
    private enum State {
        case waiting(CheckedContinuation<HTTPResponse, any Error>?)
        case finished(Result<HTTPResponse, any Error>)
        case cancelled
    }

    private let state = Mutex(State.waiting(nil))

    func value() async throws -> HTTPResponse {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let ready: Result<HTTPResponse, any Error>? = state.withLock { state in
                    switch state {
                    case .waiting: state = .waiting(continuation); return nil
                    case .finished(let result): return result
                    case .cancelled: return .failure(CancellationError())
                    }
                }
                if let ready { continuation.resume(with: ready) }
            }
        } onCancel: {
            let waiting = state.withLock { state -> CheckedContinuation<HTTPResponse, any Error>? in
                guard case .waiting(let continuation) = state else { return nil }
                state = .cancelled
                return continuation
            }
            waiting?.resume(throwing: CancellationError())
        }
    }

    func finish(_ result: Result<HTTPResponse, any Error>) {
        let waiting = state.withLock { state -> CheckedContinuation<HTTPResponse, any Error>? in
            guard case .waiting(let continuation) = state else { return nil }
            state = .finished(result)
            return continuation
        }
        waiting?.resume(with: result)
    }
}
