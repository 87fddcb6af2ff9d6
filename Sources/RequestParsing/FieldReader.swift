import JSONSupport
import OrderDomain

/// Typed access to one JSON object with error collection.
public struct FieldReader: Sendable {
    public let object: JSONObject
    public let path: String
    public private(set) var errors: [FieldError] = []
    /// Paths already reported here; rule errors on the same path are redundant.
    private(set) var reported: Set<String> = []

    public init(_ object: JSONObject, path: String = "") {
        self.object = object
        self.path = path
    }

    public func fieldPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// Keeps at most `FieldError.maximumListed` errors: the rest of a hostile
    /// body's errors cost nothing but the check.
    private mutating func report(_ field: String, _ message: String) {
        reported.insert(field)
        guard errors.count < FieldError.maximumListed else { return }
        errors.append(FieldError(field: field, message: message))
    }

    public mutating func merge(_ other: FieldReader) {
        for error in other.errors where errors.count < FieldError.maximumListed { errors.append(error) }
        reported.formUnion(other.reported)
    }

    /// Stop examining a body once this many errors are listed.
    public var isFull: Bool { errors.count >= FieldError.maximumListed }

    public mutating func rejectUnknown(allowed: Set<String>) {
        for key in object.keys where !allowed.contains(key) {
            if isFull { return }
            report(fieldPath(key), "is not a known field")
        }
    }

    public mutating func string(_ key: String) -> String {
        switch object[key] {
        case .string(let s)?: return s
        case nil, .null?: report(fieldPath(key), "is required")
        case let other?: report(fieldPath(key), "must be a string, not \(other.typeName)")
        }
        return ""
    }

    public mutating func optionalString(_ key: String) -> String? {
        switch object[key] {
        case .string(let s)?: return s
        case nil, .null?: return nil
        case let other?: report(fieldPath(key), "must be a string, not \(other.typeName)"); return nil
        }
    }

    /// Money and other decimals travel as strings ("19.99"), never as JSON numbers.
    public mutating func decimalString(_ key: String) -> String {
        switch object[key] {
        case .string(let s)?: return s
        case .number?: report(fieldPath(key), "must be a decimal string such as \"19.99\", not a number")
        case nil, .null?: report(fieldPath(key), "is required")
        case let other?: report(fieldPath(key), "must be a decimal string, not \(other.typeName)")
        }
        return ""
    }

    public mutating func integer(_ key: String) -> Int {
        switch object[key] {
        case .number(let n)?:
            if let i = Int(n) { return i }
            report(fieldPath(key), "must be a whole number")
        case nil, .null?: report(fieldPath(key), "is required")
        case let other?: report(fieldPath(key), "must be a number, not \(other.typeName)")
        }
        return 0
    }

    public mutating func objectField(_ key: String) -> JSONObject? {
        switch object[key] {
        case .object(let o)?: return o
        case nil, .null?: report(fieldPath(key), "is required")
        case let other?: report(fieldPath(key), "must be an object, not \(other.typeName)")
        }
        return nil
    }

    public mutating func array(_ key: String) -> [JSONValue]? {
        switch object[key] {
        case .array(let a)?: return a
        case nil, .null?: report(fieldPath(key), "is required")
        case let other?: report(fieldPath(key), "must be an array, not \(other.typeName)")
        }
        return nil
    }

    public mutating func reportElement(_ path: String, _ message: String) { report(path, message) }

    /// All type errors plus the domain's rule errors on fields that were well-typed.
    public func combined(with ruleErrors: [FieldError]) -> [FieldError] {
        Array((errors + ruleErrors.filter { !reported.contains($0.field) }).prefix(FieldError.maximumListed))
    }
}
