import ElasticsearchClient
import Foundation
import JSONSupport
import OrderDomain
import OrderStore

/// Where order documents live: a versioned concrete index (`<alias>_v<N>`)
/// behind the alias that readers and writers use.
public struct IndexLayout: Sendable {
    public let alias: String

    public init(alias: String) { self.alias = alias }

    /// A new, never used index name; N is the UTC time with milliseconds, so
    /// names sort by creation.
    public func newIndexName() -> String {
        let digits = Timestamp.now().rfc3339.filter(\.isNumber)
        return "\(alias)_v\(digits)"
    }

    /// The alias a reindex gives its new index while loading it; the live indexers write through it
    /// (`index_targets`), and the alias swap removes it. An index still carrying one that the alias
    /// does not point at was left by a reindex that stopped (`catchUpAliasPattern` finds them).
    public func catchUpAlias(of index: String) -> String { "\(index)\(Self.catchUpSuffix)" }

    /// Every catch-up alias of this layout's indexes, as a pattern for `GET /_alias/<pattern>`.
    public var catchUpAliasPattern: String { "\(alias)_v*\(Self.catchUpSuffix)" }

    private static let catchUpSuffix = "_catchup"

    /// The mapping file `mappings/orders.json` shipped with the package (or one at
    /// `path`, to try a changed mapping without rebuilding).
    public static func mapping(path: String? = nil) throws -> [UInt8] {
        let url: URL
        if let path {
            url = URL(fileURLWithPath: path)
        } else if let bundled = Bundle.module.url(forResource: "orders", withExtension: "json", subdirectory: "mappings") {
            url = bundled
        } else {
            throw LayoutError.mappingMissing
        }
        let data = try Data(contentsOf: url)
        // Validate it is JSON before sending it anywhere.
        _ = try JSONParser.parse(Array(data))
        return Array(data)
    }

    public enum LayoutError: Error, CustomStringConvertible {
        case mappingMissing
        public var description: String { "mappings/orders.json is missing from the package" }
    }

    /// Makes sure the alias exists. When it does not (first start, or an empty
    /// cluster after a restart), creates a fresh index and points the alias at
    /// it, and returns the new index's name so the caller can refill it.
    public func ensureAlias(_ client: ElasticsearchClient) async throws -> String? {
        if try await !client.aliasTargets(alias).isEmpty { return nil }
        // A concrete index named like the alias (auto-created by a stray write)
        // would block the alias; it holds nothing we cannot rebuild.
        if try await client.indexExists(alias), try await client.aliasTargets(alias).isEmpty {
            try await client.deleteIndex(alias)
        }
        let name = newIndexName()
        try await client.createIndex(name, body: try Self.mapping())
        let added: ElasticsearchError?
        do {
            try await client.updateAliases([.add(index: name, alias: alias)])
            added = nil
        } catch {
            added = error
        }
        if let failure = added {
            // Another process created the alias first: keep theirs, drop ours.
            _ = try? await client.deleteIndex(name)
            if try await !client.aliasTargets(alias).isEmpty { return nil }
            throw failure
        }
        return name
    }
}
