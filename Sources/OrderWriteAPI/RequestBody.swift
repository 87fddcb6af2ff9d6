import Foundation
import Hummingbird
import JSONSupport
import OrderDomain
import ServiceSupport

/// Reads a command body: enforces media type, size and JSON syntax, then
/// lets handlers pull typed fields while it records every type error and
/// unknown field, so one 422 can list all offending fields.
struct RequestBody {
    static let maxBytes = 1 << 20

    let raw: [UInt8]
    let object: JSONObject

    static func read(_ request: inout Request, allowEmpty: Bool = false) async throws -> RequestBody {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBytes {
            throw Problem(.contentTooLarge, detail: "the request body is larger than 1 MiB")
        }
        let buffer = try await request.collectBody(upTo: maxBytes)
        let bytes = Array(buffer.readableBytesView)
        if bytes.isEmpty && allowEmpty { return RequestBody(raw: Array("{}".utf8), object: JSONObject()) }
        guard Self.isJSON(request.headers[.contentType]) else {
            throw Problem(.unsupportedMediaType, detail: "the body must be application/json")
        }
        let value: JSONValue
        do { value = try JSONParser.parse(bytes) } catch {
            throw Problem(.badRequest, title: "Malformed JSON", detail: "the body is not valid JSON (\(error))")
        }
        guard case .object(let object) = value else {
            throw Problem.validation([.init(field: "(body)", message: "must be a JSON object")])
        }
        return RequestBody(raw: bytes, object: object)
    }

    static func isJSON(_ contentType: String?) -> Bool {
        guard let contentType else { return false }
        let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        return mediaType == "application/json" || (mediaType.hasPrefix("application/") && mediaType.hasSuffix("+json"))
    }
}

/// Typed access to one JSON object with error collection.
struct FieldReader {
    let object: JSONObject
    let path: String
    private(set) var errors: [FieldError] = []
    /// Paths already reported here; rule errors on the same path are redundant.
    private(set) var reported: Set<String> = []

    init(_ object: JSONObject, path: String = "") {
        self.object = object
        self.path = path
    }

    func fieldPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    private mutating func report(_ field: String, _ message: String) {
        errors.append(FieldError(field: field, message: message))
        reported.insert(field)
    }

    mutating func merge(_ other: FieldReader) {
        errors.append(contentsOf: other.errors)
        reported.formUnion(other.reported)
    }

    mutating func rejectUnknown(allowed: Set<String>) {
        for key in object.keys where !allowed.contains(key) {
            report(fieldPath(key), "is not a known field")
        }
    }

    mutating func string(_ key: String) -> String {
        switch object[key] {
        case .string(let s)?: return s
        case nil, .null?: report(fieldPath(key), "is required")
        case let other?: report(fieldPath(key), "must be a string, not \(other.typeName)")
        }
        return ""
    }

    mutating func optionalString(_ key: String) -> String? {
        switch object[key] {
        case .string(let s)?: return s
        case nil, .null?: return nil
        case let other?: report(fieldPath(key), "must be a string, not \(other.typeName)"); return nil
        }
    }

    /// Money and other decimals travel as strings ("19.99"), never as JSON numbers.
    mutating func decimalString(_ key: String) -> String {
        switch object[key] {
        case .string(let s)?: return s
        case .number?: report(fieldPath(key), "must be a decimal string such as \"19.99\", not a number")
        case nil, .null?: report(fieldPath(key), "is required")
        case let other?: report(fieldPath(key), "must be a decimal string, not \(other.typeName)")
        }
        return ""
    }

    mutating func integer(_ key: String) -> Int {
        switch object[key] {
        case .number(let n)?:
            if let i = Int(n) { return i }
            report(fieldPath(key), "must be a whole number")
        case nil, .null?: report(fieldPath(key), "is required")
        case let other?: report(fieldPath(key), "must be a number, not \(other.typeName)")
        }
        return 0
    }

    mutating func objectField(_ key: String) -> JSONObject? {
        switch object[key] {
        case .object(let o)?: return o
        case nil, .null?: report(fieldPath(key), "is required")
        case let other?: report(fieldPath(key), "must be an object, not \(other.typeName)")
        }
        return nil
    }

    mutating func array(_ key: String) -> [JSONValue]? {
        switch object[key] {
        case .array(let a)?: return a
        case nil, .null?: report(fieldPath(key), "is required")
        case let other?: report(fieldPath(key), "must be an array, not \(other.typeName)")
        }
        return nil
    }

    mutating func reportElement(_ path: String, _ message: String) { report(path, message) }

    /// All type errors plus the domain's rule errors on fields that were well-typed.
    func combined(with ruleErrors: [FieldError]) -> [FieldError] {
        errors + ruleErrors.filter { !reported.contains($0.field) }
    }
}
