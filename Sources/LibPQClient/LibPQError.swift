/// An error from the database layer. Its description names the kind of failure
/// and the SQLSTATE (and, for constraint violations, the constraint's name) but
/// never SQL text or values, so it is safe to log and to map to a response.
public struct LibPQError: Error, CustomStringConvertible, Sendable, Equatable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String { case connection, uniqueViolation, foreignKeyViolation, serializationFailure, deadlock, checkViolation, queryCanceled, other, timeout }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The server is unreachable, the connection broke, or the pool could not open one.
        public static let connection = Code(.connection)
        public static let uniqueViolation = Code(.uniqueViolation)
        public static let foreignKeyViolation = Code(.foreignKeyViolation)
        public static let checkViolation = Code(.checkViolation)
        public static let serializationFailure = Code(.serializationFailure)
        public static let deadlock = Code(.deadlock)
        public static let queryCanceled = Code(.queryCanceled)
        /// No connection became free in time.
        public static let timeout = Code(.timeout)
        public static let other = Code(.other)

        public var description: String { base.rawValue }
    }

    public let code: Code
    /// Five-character SQLSTATE when the server sent one.
    public let sqlState: String?
    /// Name of the violated constraint (schema metadata, not data).
    public let constraint: String?

    public init(code: Code, sqlState: String? = nil, constraint: String? = nil) {
        self.code = code
        self.sqlState = sqlState
        self.constraint = constraint
    }

    init(sqlState: String?, constraint: String?) {
        let code: Code = switch sqlState {
        case "23505": .uniqueViolation
        case "23503": .foreignKeyViolation
        case "23514": .checkViolation
        case "40001": .serializationFailure
        case "40P01": .deadlock
        case "57014": .queryCanceled  // also statement_timeout
        case "55P03": .timeout  // lock_timeout
        case .some(let s) where s.hasPrefix("08") || s == "57P01" || s == "57P02" || s == "57P03": .connection
        default: .other
        }
        self.init(code: code, sqlState: sqlState, constraint: constraint)
    }

    /// Worth running the whole transaction again.
    public var isRetryable: Bool { code == .serializationFailure || code == .deadlock }

    public var description: String {
        var text = "LibPQError(\(code)"
        if let sqlState { text += ", sqlstate: \(sqlState)" }
        if let constraint { text += ", constraint: \(constraint)" }
        return text + ")"
    }
}
