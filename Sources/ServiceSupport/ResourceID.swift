import Hummingbird

/// The `{id}` of a path, for both APIs. Ids are server-generated
/// (`ord_…`, `cus_…`: letters, digits, `_` and `-`); anything else cannot name a
/// resource, so it is a 404 before it reaches libpq or an Elasticsearch URL
/// (no `..`, no `/`, no NUL).
public enum ResourceID {
    public static let maximumLength = 100

    public static func isValid(_ id: some StringProtocol) -> Bool {
        (1...maximumLength).contains(id.utf8.count) && id.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "_"), UInt8(ascii: "-"): true
            default: false
            }
        }
    }

    /// The path's `{id}`, or a 404 problem.
    public static func require(_ context: some RequestContext, notFound detail: String = "no such resource") throws -> String {
        let id = try context.parameters.require("id")
        guard isValid(id) else { throw Problem(.notFound, detail: detail) }
        return id
    }
}
