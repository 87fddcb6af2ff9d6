#if canImport(Glibc)
import Glibc
#endif

/// Helpers for tests and benchmarks that start servers of their own; no service links this target
/// (as HummingbirdTesting sits beside Hummingbird).
public enum LoopbackPort {
    /// A loopback port nobody listens on right now.
    public static func free() -> Int {
        for _ in 0..<100 {
            // Below Linux's ephemeral range (32768+), where outgoing connections could take the port first.
            let port = Int.random(in: 20_000...32_000)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = address(port: port)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            close(fd)
            if bound == 0 { return port }
        }
        return 44_999
    }

    /// 127.0.0.1:port as a socket address.
    public static func address(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }
}
