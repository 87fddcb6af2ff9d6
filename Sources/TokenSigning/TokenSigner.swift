import Crypto
import Foundation
import JSONSupport

/// The one format of the opaque tokens both APIs hand out (`Consistency-Token`,
/// `next_cursor`): `base64url(payload) "." base64url(HMAC-SHA256(purpose, payload))`
/// keyed with `SIGNING_KEY`. The purpose is inside the MAC, so a cursor can
/// never pass as a consistency token or the other way round.
public struct TokenSigner: Sendable {
    /// Keys shorter than the hash's output are refused (RFC 2104 §3).
    public static let minimumKeyBytes = 32
    public enum Purpose: String, Sendable {
        case consistency = "consistency-v1"
        case cursor = "cursor-v1"

        /// Longer tokens are refused before any decoding (bounded work per request). A cursor carries
        /// its query, so it may be as long as the OpenAPI document allows (64 KiB); a consistency
        /// token names one write.
        public var maximumTokenBytes: Int {
            switch self {
            case .consistency: 4096
            case .cursor: 65_536
            }
        }
    }

    private let key: SymmetricKey

    /// A start-up failure; the message names the variable, never its value.
    public struct InvalidKey: Error, CustomStringConvertible {
        public var description: String {
            "SIGNING_KEY must be set, at least \(TokenSigner.minimumKeyBytes) bytes long and the same for order-write-api and order-search-api"
        }
    }

    public init(key: String) throws(InvalidKey) {
        guard key.utf8.count >= Self.minimumKeyBytes else { throw InvalidKey() }
        self.key = SymmetricKey(data: Array(key.utf8))
    }

    /// Reads `SIGNING_KEY` from the environment.
    public init(environment: [String: String]) throws(InvalidKey) {
        try self.init(key: environment["SIGNING_KEY"] ?? "")
    }

    public func sign(_ payload: [UInt8], for purpose: Purpose) -> String {
        Base64URL.encode(payload) + "." + Base64URL.encode(Array(mac(payload, purpose)))
    }

    /// The payload of a token this key signed for this purpose, or nil for anything else.
    public func verify(_ token: String, for purpose: Purpose) -> [UInt8]? {
        guard token.utf8.count <= purpose.maximumTokenBytes else { return nil }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let payload = Base64URL.decode(String(parts[0])), let signature = Base64URL.decode(String(parts[1]))
        else { return nil }
        guard HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: Self.message(payload, purpose), using: key) else {
            return nil
        }
        return payload
    }

    private func mac(_ payload: [UInt8], _ purpose: Purpose) -> HashedAuthenticationCode<SHA256> {
        HMAC<SHA256>.authenticationCode(for: Self.message(payload, purpose), using: key)
    }

    private static func message(_ payload: [UInt8], _ purpose: Purpose) -> [UInt8] {
        Array(purpose.rawValue.utf8) + [0] + payload
    }
}

/// SHA-256 as lower-case hex: request fingerprints and query fingerprints.
public enum Digest {
    public static func sha256Hex(_ parts: [String]) -> String {
        var hasher = SHA256()
        for part in parts {
            // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
            hasher.update(data: Array("\(part.utf8.count):".utf8))
            hasher.update(data: Array(part.utf8))
        }
        return hex(hasher.finalize())
    }

    /// Lower-case hex by table: `String(format:)` per byte cost more than the hash itself on
    /// the write path (a profile of `POST /orders` showed it at 6 % of the API's CPU).
    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
