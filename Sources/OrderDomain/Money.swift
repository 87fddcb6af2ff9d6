/// An exact amount of money with two fraction digits, held as minor units.
/// Never a floating-point number: 3 × 19.99 is exactly 59.97.
public struct Money: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let minorUnits: Int64

    public init(minorUnits: Int64) { self.minorUnits = minorUnits }

    public static let zero = Money(minorUnits: 0)

    /// Parses a plain decimal string: digits, optionally `.` and one or two
    /// fraction digits (`"49.99"`, `"5"`, `"0.5"`). No sign, exponent or spaces.
    /// At most 13 integer digits, so every sum the domain forms fits in `Int64`.
    public init?(decimal text: String) {
        let utf8 = Array(text.utf8)
        guard !utf8.isEmpty else { return nil }
        var integer: Int64 = 0
        var i = 0
        var integerDigits = 0
        while i < utf8.count, (0x30...0x39).contains(utf8[i]) {
            integer = integer * 10 + Int64(utf8[i] - 0x30)
            integerDigits += 1
            guard integerDigits <= 13 else { return nil }
            i += 1
        }
        guard integerDigits > 0 else { return nil }
        var fraction: Int64 = 0
        if i < utf8.count {
            guard utf8[i] == UInt8(ascii: "."), i + 1 < utf8.count, utf8.count - (i + 1) <= 2 else { return nil }
            var digits = 0
            for b in utf8[(i + 1)...] {
                guard (0x30...0x39).contains(b) else { return nil }
                fraction = fraction * 10 + Int64(b - 0x30)
                digits += 1
            }
            if digits == 1 { fraction *= 10 }
        }
        minorUnits = integer * 100 + fraction
    }

    /// Always two fraction digits: `"59.97"`, `"50.00"`.
    public var description: String {
        let sign = minorUnits < 0 ? "-" : ""
        let value = minorUnits.magnitude
        let fraction = value % 100
        return "\(sign)\(value / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }

    public static func + (lhs: Money, rhs: Money) -> Money { Money(minorUnits: lhs.minorUnits + rhs.minorUnits) }

    public static func * (lhs: Money, rhs: Int) -> Money { Money(minorUnits: lhs.minorUnits * Int64(rhs)) }

    public static func < (lhs: Money, rhs: Money) -> Bool { lhs.minorUnits < rhs.minorUnits }
}
