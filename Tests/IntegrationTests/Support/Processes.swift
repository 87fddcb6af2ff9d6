import Foundation

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
        process.standardError = FileHandle.nullDevice
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

    deinit { if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) } }

    /// A built product of this package (`scripts/test` runs `swift build` first).
    static func product(_ name: String) -> URL {
        TestEnvironment.repositoryRoot.appendingPathComponent(".build/debug/\(name)")
    }

    static var osmem: URL { TestEnvironment.repositoryRoot.appendingPathComponent(".venv/bin/osmem-server") }

    /// A TCP port nobody listens on right now.
    static func freePort() -> Int {
        for _ in 0..<50 {
            let port = Int.random(in: 20_000...40_000)
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
        return 39_999
    }
}
