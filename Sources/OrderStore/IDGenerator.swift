import OrderDomain

#if canImport(Glibc)
import Glibc
#endif

/// Opaque, unguessable identifiers that sort roughly by creation time
/// (48-bit millisecond time + 80 random bits, Crockford base32, lower case).
struct IDGenerator: Sendable {
    private static let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz".utf8)

    func make(prefix: String) -> String {
        var rng = SystemRandomNumberGenerator()
        var time = UInt64(Timestamp.now().millisecondsSinceEpoch)
        var chars = [UInt8](repeating: 0, count: 26)
        for i in stride(from: 9, through: 0, by: -1) {
            chars[i] = Self.alphabet[Int(time & 31)]
            time >>= 5
        }
        for i in 10..<26 { chars[i] = Self.alphabet[Int(rng.next() & 31)] }
        return prefix + "_" + String(decoding: chars, as: UTF8.self)
    }
}
