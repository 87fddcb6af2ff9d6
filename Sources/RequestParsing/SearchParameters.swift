import OrderDomain

/// A validated `GET /search/orders` request. Every bad value is a 400 that
/// names its parameter; nothing here ever becomes query syntax.
public struct SearchParameters: Sendable, Equatable {
    public enum Sort: String, Sendable, CaseIterable {
        case relevance
        case createdAtDescending = "-created_at"
        case createdAt = "created_at"
        case total
        case totalDescending = "-total"
    }

    public var q: String?
    public var statuses: [String] = []
    public var currencies: [String] = []
    public var countries: [String] = []
    public var customerIDs: [String] = []
    public var skus: [String] = []
    public var totalMin: Money?
    public var totalMax: Money?
    public var createdFrom: Timestamp?
    public var createdTo: Timestamp?
    public var sort: Sort
    public var size = 20
    public var facetSize = 10
    public var cursor: String?
    /// Whether the request named any parameter but `cursor`: a request that sends only a cursor
    /// continues the cursor's own query; one that sends more must send that same query.
    public private(set) var hasParametersBesideCursor = false

    public struct Invalid: Error, Equatable {
        public let parameter: String
        public let message: String

        public init(parameter: String, message: String) {
            self.parameter = parameter
            self.message = message
        }
    }

    /// Values one filter takes at most (the contract: 400 beyond).
    public static let maximumFilterValues = 100
    /// `q` in Unicode scalars.
    public static let maximumQueryLength = 512

    public static let multiValued: Set<String> = ["status", "currency", "country", "customer_id", "sku"]
    public static let singleValued: Set<String> = ["q", "total_min", "total_max", "created_from", "created_to", "sort", "size", "cursor", "facet_size"]

    /// Parses a raw query string (`a=1&b=2`).
    public init(query: String?) throws(Invalid) {
        var values: [String: [String]] = [:]
        for pair in (query ?? "").split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = Self.percentDecode(parts[0]) else { throw Invalid(parameter: String(parts[0].prefix(40)), message: "is not valid percent-encoded UTF-8") }
            guard Self.multiValued.contains(name) || Self.singleValued.contains(name) else {
                throw Invalid(parameter: String(name.prefix(40)), message: "is not a known parameter")
            }
            guard let value = parts.count > 1 ? Self.percentDecode(parts[1]) : "" else {
                throw Invalid(parameter: name, message: "is not valid percent-encoded UTF-8")
            }
            values[name, default: []].append(value)
            if name != "cursor" { hasParametersBesideCursor = true }
        }
        func single(_ name: String) throws(Invalid) -> String? {
            guard let list = values[name] else { return nil }
            guard list.count == 1 else { throw Invalid(parameter: name, message: "must be given at most once") }
            return list[0]
        }
        /// Values of a repeatable filter: split on commas, trimmed, de-duplicated
        /// (keeping the first occurrence's order); counted while splitting, so a
        /// request with thousands of values stops at the 101st.
        func list(_ name: String) throws(Invalid) -> [String] {
            var out: [String] = []
            var seen: Set<String> = []
            for value in values[name] ?? [] {
                for part in value.split(separator: ",", omittingEmptySubsequences: true) {
                    let trimmed = String(part.trimmingWhitespace)
                    guard !trimmed.isEmpty, seen.insert(trimmed).inserted else { continue }
                    guard out.count < Self.maximumFilterValues else {
                        throw Invalid(parameter: name, message: "accepts at most \(Self.maximumFilterValues) values")
                    }
                    out.append(trimmed)
                }
            }
            return out
        }

        if let q = try single("q") {
            guard q.unicodeScalars.count <= Self.maximumQueryLength else {
                throw Invalid(parameter: "q", message: "must be at most \(Self.maximumQueryLength) characters")
            }
            self.q = q.trimmingWhitespace.isEmpty ? nil : q
        }
        statuses = try list("status")
        for s in statuses where OrderStatus(rawValue: s) == nil {
            throw Invalid(parameter: "status", message: "must be one of pending, paid, shipped, delivered, cancelled")
        }
        currencies = try list("currency")
        for c in currencies where !(c.utf8.count == 3 && c.utf8.allSatisfy { (0x41...0x5A).contains($0) }) {
            throw Invalid(parameter: "currency", message: "must be three upper-case letters (ISO 4217)")
        }
        countries = try list("country")
        for c in countries where !(c.utf8.count == 2 && c.utf8.allSatisfy { (0x41...0x5A).contains($0) }) {
            throw Invalid(parameter: "country", message: "must be two upper-case letters (ISO 3166-1 alpha-2)")
        }
        customerIDs = try list("customer_id")
        for c in customerIDs where c.unicodeScalars.count > 100 {
            throw Invalid(parameter: "customer_id", message: "must be at most 100 characters")
        }
        skus = try list("sku")
        for s in skus where s.unicodeScalars.count > 64 {
            throw Invalid(parameter: "sku", message: "must be at most 64 characters")
        }
        func money(_ name: String) throws(Invalid) -> Money? {
            guard let text = try single(name) else { return nil }
            guard let money = Money(decimal: text) else { throw Invalid(parameter: name, message: "must be a decimal such as \"50\" or \"49.99\"") }
            return money
        }
        func time(_ name: String) throws(Invalid) -> Timestamp? {
            guard let text = try single(name) else { return nil }
            // In UTC it must still have a four-digit year (`9999-12-31T23:59:59-00:01` has not): the cursor
            // carries it in UTC and must parse it back.
            guard let time = Timestamp(rfc3339: text), Timestamp(rfc3339: time.rfc3339) == time else {
                throw Invalid(parameter: name, message: "must be an RFC 3339 time or YYYY-MM-DD, in the years 0000 to 9999 (UTC)")
            }
            return time
        }
        totalMin = try money("total_min")
        totalMax = try money("total_max")
        if let min = totalMin, let max = totalMax, min > max {
            throw Invalid(parameter: "total_min", message: "must not be greater than total_max")
        }
        createdFrom = try time("created_from")
        createdTo = try time("created_to")
        if let text = try single("sort") {
            guard let sort = Sort(rawValue: text) else {
                throw Invalid(parameter: "sort", message: "must be one of relevance, -created_at, created_at, total, -total")
            }
            self.sort = sort
        } else {
            sort = q == nil ? .createdAtDescending : .relevance
        }
        if let text = try single("size") {
            guard let n = Int(text), (1...100).contains(n) else { throw Invalid(parameter: "size", message: "must be an integer from 1 to 100") }
            size = n
        }
        if let text = try single("facet_size") {
            guard let n = Int(text), (1...100).contains(n) else { throw Invalid(parameter: "facet_size", message: "must be an integer from 1 to 100") }
            facetSize = n
        }
        if let text = try single("cursor") {
            guard !text.isEmpty else { throw Invalid(parameter: "cursor", message: "must not be empty") }
            cursor = text
        }
    }


    /// Every parameter except the cursor, as a query string that parses back to the same query:
    /// filter values sorted, defaults spelled out. Two requests for the same query have the same one
    /// (what a cursor carries, and what a request that resends parameters beside it must match).
    public var canonicalQuery: String {
        var pairs: [(String, String)] = []
        if let q { pairs.append(("q", q)) }
        for (name, values) in [("status", statuses), ("currency", currencies), ("country", countries),
                               ("customer_id", customerIDs), ("sku", skus)] where !values.isEmpty {
            pairs.append((name, values.sorted().joined(separator: ",")))
        }
        if let totalMin { pairs.append(("total_min", totalMin.description)) }
        if let totalMax { pairs.append(("total_max", totalMax.description)) }
        if let createdFrom { pairs.append(("created_from", createdFrom.rfc3339)) }
        if let createdTo { pairs.append(("created_to", createdTo.rfc3339)) }
        pairs += [("sort", sort.rawValue), ("size", String(size)), ("facet_size", String(facetSize))]
        return pairs.map { "\($0)=\(Self.percentEncode($1))" }.joined(separator: "&")
    }

    /// Every byte but RFC 3986's unreserved characters as `%XX` (so `+`, `,`, `&` and `=` in a
    /// value survive `percentDecode`).
    static func percentEncode(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for b in text.utf8 {
            switch b {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(b)
            default:
                out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 0x0F)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func percentDecode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let b = iterator.next() {
            switch b {
            case UInt8(ascii: "+"): bytes.append(0x20)
            case UInt8(ascii: "%"):
                guard let h = iterator.next(), let l = iterator.next(), let hv = hexValue(h), let lv = hexValue(l) else { return nil }
                bytes.append(hv << 4 | lv)
            default: bytes.append(b)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: b - 0x30
        case 0x41...0x46: b - 0x41 + 10
        case 0x61...0x66: b - 0x61 + 10
        default: nil
        }
    }
}
