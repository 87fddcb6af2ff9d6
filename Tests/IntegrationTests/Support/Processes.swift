import Testing
import Foundation
import ServiceTesting

/// Child processes for tests that need a real process boundary (SIGKILL, a
/// search server that dies and comes back empty).
final class ChildProcess: @unchecked Sendable {
    let process = Process()

    init(_ executable: URL, arguments: [String] = [], environment: [String: String] = [:]) throws {
        guard FileManager.default.isExecutableFile(atPath: executable.path) else { throw Missing(path: executable.lastPathComponent) }
        process.executableURL = executable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = FileHandle.nullDevice
        // TEST_CHILD_LOG=<file>: keep the children's logs there (for debugging a failing test).
        if let path = ProcessInfo.processInfo.environment["TEST_CHILD_LOG"], let log = FileHandle(forWritingAtPath: path) {
            log.seekToEndOfFile()
            process.standardError = log
        } else {
            process.standardError = FileHandle.nullDevice
        }
        try process.run()
    }

    struct Missing: Error, CustomStringConvertible {
        let path: String
        var description: String { "\(path) is not built or installed: run the tests with scripts/test (it builds all products first)" }
    }

    func kill(signal: Int32 = SIGKILL) {
        if process.isRunning { Foundation.kill(process.processIdentifier, signal) }
        process.waitUntilExit()
    }

    /// Sends `signal` and waits (polling, not blocking a thread) up to `within` for the exit;
    /// the exit status, or nil if it was still running.
    func stop(signal: Int32 = SIGTERM, within: Duration) async -> Int32? {
        if process.isRunning { Foundation.kill(process.processIdentifier, signal) }
        let deadline = ContinuousClock.now + within
        while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        return process.isRunning ? nil : process.terminationStatus
    }

    deinit { if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) } }

    /// A built product of this package (`scripts/test` runs `swift build` first).
    static func product(_ name: String) -> URL {
        TestEnvironment.repositoryRoot.appendingPathComponent(".build/debug/\(name)")
    }

    static var osmem: URL { TestEnvironment.repositoryRoot.appendingPathComponent(".venv/bin/osmem-server") }

    static func freePort() -> Int { LoopbackPort.free() }
}
