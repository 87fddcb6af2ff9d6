/// One offending field of a rejected command, named by its JSON path
/// (`items[0].quantity`).
public struct FieldError: Sendable, Hashable, CustomStringConvertible {
    /// A 422 lists at most this many field errors (the contract's limit), so a
    /// huge invalid body cannot produce a huge response.
    public static let maximumListed = 100

    public let field: String
    public let message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { "\(field): \(message)" }
}

/// Why the domain refused a command.
public enum DomainError: Error, Sendable, Equatable {
    /// The command's values break the rules; every offending field is listed.
    case validation([FieldError])
    /// The order's state machine does not allow this command from its current status.
    case invalidTransition(command: String, current: OrderStatus)
}

/// Collects field errors so that a command reports all of them at once.
public struct FieldErrors: Sendable {
    public private(set) var errors: [FieldError] = []

    public init() {}

    public mutating func add(_ field: String, _ message: String) {
        errors.append(FieldError(field: field, message: message))
    }

    public mutating func append(contentsOf other: [FieldError]) { errors.append(contentsOf: other) }

    public var isEmpty: Bool { errors.isEmpty }

    public func throwIfAny() throws(DomainError) {
        if !errors.isEmpty { throw .validation(errors) }
    }
}

enum Rules {
    static func text(_ value: String, field: String, max: Int, into errors: inout FieldErrors) {
        let count = value.unicodeScalars.count
        if value.unicodeScalars.contains("\u{0}") {
            errors.add(field, "must not contain NUL characters")
        } else if value.trimmingWhitespace.isEmpty {
            errors.add(field, "must not be empty")
        } else if count > max {
            errors.add(field, "must be at most \(max) characters")
        }
    }

    static func optionalText(_ value: String?, field: String, max: Int, into errors: inout FieldErrors) {
        if let value, value.unicodeScalars.count > max {
            errors.add(field, "must be at most \(max) characters")
        } else if let value, value.unicodeScalars.contains("\u{0}") {
            errors.add(field, "must not contain NUL characters")
        }
    }

    static func email(_ value: String, field: String, into errors: inout FieldErrors) {
        // A deliberately plain check: one "@", a non-empty local part, a dotted
        // domain, no spaces. Deliverability is not the write model's business.
        let parts = value.split(separator: "@", omittingEmptySubsequences: false)
        let valid = value.utf8.count <= 254
            && parts.count == 2
            && !parts[0].isEmpty && parts[0].utf8.count <= 64
            && Self.isDottedDomain(parts[1])
            && !value.unicodeScalars.contains { $0.properties.isWhitespace || $0.value < 0x20 }
        if !valid { errors.add(field, "must be an e-mail address") }
    }

    /// Two or more labels, none empty (`a@b..c` is not an address), as the OpenAPI pattern says.
    static func isDottedDomain(_ domain: Substring) -> Bool {
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        return labels.count >= 2 && labels.allSatisfy { !$0.isEmpty }
    }

    static func country(_ value: String, field: String, into errors: inout FieldErrors) {
        if !ReferenceData.countries.contains(value) {
            errors.add(field, "must be an ISO 3166-1 alpha-2 country code such as \"DE\"")
        }
    }

    static func currency(_ value: String, field: String, into errors: inout FieldErrors) {
        if !ReferenceData.currencies.contains(value) {
            errors.add(field, "must be an ISO 4217 currency code such as \"EUR\"")
        }
    }
}

extension StringProtocol {
    /// Without leading and trailing Unicode whitespace: the one trimming rule of
    /// the domain and of request parsing.
    public var trimmingWhitespace: Substring {
        var s = Substring(self)
        while let f = s.unicodeScalars.first, f.properties.isWhitespace { s = Substring(s.unicodeScalars.dropFirst()) }
        while let l = s.unicodeScalars.last, l.properties.isWhitespace { s = Substring(s.unicodeScalars.dropLast()) }
        return s
    }
}
