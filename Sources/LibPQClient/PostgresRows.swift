/// Values that can be bound to a statement parameter (sent as text, typed by the server).
public protocol PostgresBindable: Sendable {
    var postgresText: String { get }
}

extension String: PostgresBindable { public var postgresText: String { self } }
extension Substring: PostgresBindable { public var postgresText: String { String(self) } }
extension Int: PostgresBindable { public var postgresText: String { String(self) } }
extension Int64: PostgresBindable { public var postgresText: String { String(self) } }
extension Int32: PostgresBindable { public var postgresText: String { String(self) } }
extension Bool: PostgresBindable { public var postgresText: String { self ? "t" : "f" } }
/// An `interval` in whole milliseconds (`$1::interval`).
extension Duration: PostgresBindable { public var postgresText: String { "\(wholeMilliseconds) milliseconds" } }

extension Duration {
    /// Whole milliseconds, as PostgreSQL settings and intervals take them.
    public var wholeMilliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }

    /// Seconds with their fraction, for rates and reports.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// A text array literal (`{"a","b"}`) for `= ANY($1::text[])`.
public struct PostgresTextArray: PostgresBindable {
    public let values: [String]
    public init(_ values: [String]) { self.values = values }
    public var postgresText: String {
        var s = "{"
        for (i, v) in values.enumerated() {
            if i > 0 { s += "," }
            s += "\""
            for c in v.unicodeScalars {
                if c == "\"" || c == "\\" { s += "\\" }
                s.unicodeScalars.append(c)
            }
            s += "\""
        }
        return s + "}"
    }
}

/// The rows of one result, copied out of libpq's buffer in text form.
public struct PostgresRows: Sendable, Sequence {
    public let columns: [String]
    let values: [String?]
    public let affectedRows: Int

    init(columns: [String], values: [String?], affectedRows: Int) {
        self.columns = columns
        self.values = values
        self.affectedRows = affectedRows
    }

    public var count: Int { columns.isEmpty ? 0 : values.count / columns.count }
    public var isEmpty: Bool { count == 0 }
    public var first: PostgresRow? { isEmpty ? nil : self[0] }

    public subscript(row: Int) -> PostgresRow { PostgresRow(rows: self, row: row) }

    public func makeIterator() -> AnyIterator<PostgresRow> {
        var i = 0
        return AnyIterator {
            guard i < self.count else { return nil }
            defer { i += 1 }
            return self[i]
        }
    }
}

extension PostgresRows {
    /// The position of a result column, for reading many rows by name without a lookup per value.
    public func columnIndex(_ name: String) -> Int? { columns.firstIndex(of: name) }

    /// The position of a column the statement itself selects: its absence is a
    /// programming error in that statement, not a runtime condition.
    public func requiredColumn(_ name: String) -> Int {
        guard let index = columns.firstIndex(of: name) else { preconditionFailure("the result has no column \(name)") }
        return index
    }
}

public struct PostgresRow: Sendable {
    let rows: PostgresRows
    let row: Int

    public func string(_ column: Int) -> String? { rows.values[row * rows.columns.count + column] }

    public func string(_ name: String) -> String? {
        guard let c = rows.columns.firstIndex(of: name) else { return nil }
        return string(c)
    }

    public func int(_ column: Int) -> Int? { string(column).flatMap { Int($0) } }
    public func int(_ name: String) -> Int? { string(name).flatMap { Int($0) } }
    public func int64(_ column: Int) -> Int64? { string(column).flatMap { Int64($0) } }
    public func int64(_ name: String) -> Int64? { string(name).flatMap { Int64($0) } }
    public func bool(_ name: String) -> Bool? { string(name).map { $0 == "t" } }
}
