import ElasticsearchClient
import HTTPTypes
import Hummingbird
import IndexSchema
import JSONSupport
import OrderDomain
import ServiceSupport

/// Read-your-writes: `Consistency-Token` and `Consistency-Wait`.
extension SearchHandlers {
    /// Waits (bounded by `Consistency-Wait`) until the write named by the
    /// `Consistency-Token` is searchable. Checked with `_count` queries, which
    /// see what searches see (after a refresh on real Elasticsearch).
    func waitForConsistency(_ request: Request, scope: String?) async throws -> Bool? {
        guard let raw = request.headers[HTTPField.Name("Consistency-Token")!] else {
            if request.headers[HTTPField.Name("Consistency-Wait")!] != nil {
                _ = try Self.parseWait(request)
            }
            return nil
        }
        guard let payload = signer.verify(raw, for: .consistency), let token = ConsistencyToken(payload: payload) else {
            throw Problem.badParameter("Consistency-Token", "is not a token returned by the write API")
        }
        let wait = try Self.parseWait(request)
        // A customer waits only for its own writes: another customer's write is neither waited for nor
        // looked up (its progress is none of this customer's business), and the answer does not claim it.
        if let scope, token.customerID != scope { return false }
        if try await isApplied(token) { return true }
        let pauses = consistency.pauses(within: .milliseconds(wait))
        if pauses.isEmpty { return false }
        let outcome = try await waiters.withSlot { () async throws -> Bool in
            for pause in pauses {
                try await Task.sleep(for: pause)
                if try await isApplied(token) { return true }
            }
            return false
        }
        guard let outcome else {
            throw Problem(.serviceUnavailable, detail: "too many requests are waiting for writes to become searchable; retry later",
                          headers: [.retryAfter: "1"])
        }
        return outcome
    }

    static func parseWait(_ request: Request) throws -> Int {
        guard let text = request.headers[HTTPField.Name("Consistency-Wait")!] else { return 1000 }
        guard let ms = Int(text.trimmingWhitespace), (0...10_000).contains(ms) else {
            throw Problem.badParameter("Consistency-Wait", "must be an integer number of milliseconds from 0 to 10000")
        }
        return ms
    }

    func isApplied(_ token: ConsistencyToken) async throws -> Bool {
        try await mapErrors { () async throws(ElasticsearchError) -> Bool in
            do throws(ElasticsearchError) {
                return try await appliedCount(token)
            } catch {
                // The index is being (re)created: not applied yet, keep waiting.
                if error.code == .http && error.status == 404 { return false }
                throw error
            }
        }
    }

    func appliedCount(_ token: ConsistencyToken) async throws(ElasticsearchError) -> Bool {
        func filter(_ id: IndexField, _ version: IndexField, _ comparison: String) -> JSONValue {
            ["bool": ["filter": [["term": .object(JSONObject([(id.path, .string(token.aggregateID))]))],
                                 ["range": .object(JSONObject([(version.path, .object(JSONObject([(comparison, .int(token.version))])))]))]]]]
        }
        switch token.aggregateType {
        case .order:
            return try await client.count(alias, query: filter(.orderID, .version, "gte")) > 0
        case .customer:
            // Applied when no document of this customer still shows an older version.
            return try await client.count(alias, query: filter(.customerID, .customerVersion, "lt")) == 0
        }
    }
}
