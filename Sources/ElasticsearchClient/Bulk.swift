import JSONSupport

/// One `_bulk` request body, built incrementally as NDJSON with the trailing newline.
public struct BulkRequest: Sendable {
    public private(set) var body = JSONWriter(capacity: 64 * 1024)
    public private(set) var ids: [String] = []

    public init() {}

    public var count: Int { ids.count }
    public var byteCount: Int { body.bytes.count }

    /// `index` with an external version: applied only if newer than what is stored.
    public mutating func index(_ index: String, id: String, version: Int64, requireAlias: Bool, document: (inout JSONWriter) -> Void) {
        body.raw("{\"index\":{\"_index\":"); body.string(index)
        body.raw(",\"_id\":"); body.string(id)
        body.raw(",\"version\":"); body.int(version)
        body.raw(",\"version_type\":\"external\"")
        if requireAlias { body.raw(",\"require_alias\":true") }
        body.raw("}}\n")
        document(&body)
        body.newline()
        ids.append(id)
    }

    /// `delete` with an external version (leaves a tombstone so older writes stay out).
    public mutating func delete(_ index: String, id: String, version: Int64) {
        body.raw("{\"delete\":{\"_index\":"); body.string(index)
        body.raw(",\"_id\":"); body.string(id)
        body.raw(",\"version\":"); body.int(version)
        body.raw(",\"version_type\":\"external\"}}\n")
        ids.append(id)
    }
}

/// What happened to one bulk item, classified by status code only (ES-COMPAT §2.5).
public enum BulkItemOutcome: Sendable, Equatable {
    /// Written (200/201), or not found on delete.
    case applied
    /// 409: the stored document is as new or newer; nothing to do.
    case stale
    /// 400 and other 4xx but 401/403: the document will never be accepted; dead-letter it.
    case rejected(status: Int, errorType: String?)
    /// 404 index_not_found (the alias vanished): recreate the index, then retry.
    case indexMissing
    /// 429 / 5xx: retry later.
    case retry(status: Int)
    /// 401/403: refused for a reason outside the document, an index write block an operator set
    /// (`cluster_block_exception`) or an API key without the privilege. Neither a dead letter (the
    /// document is fine) nor a quick retry (it lasts until someone fixes it): the work is handed
    /// back, or an admin command stops and says so (`WritesRefused`).
    case refused(status: Int, errorType: String?)
}

extension ElasticsearchClient {
    /// Sends one bulk request. A whole-request 429/5xx or a transport failure
    /// throws (the caller retries everything); otherwise returns one outcome per item, in order.
    public func bulk(_ request: BulkRequest, timeout: Duration? = nil) async throws(ElasticsearchError) -> [BulkItemOutcome] {
        guard request.count > 0 else { return [] }
        let response = try await send(
            "POST", "/_bulk?filter_path=errors,items.*.error.type,items.*.status", json: request.body.bytes,
            contentType: "application/x-ndjson", timeout: timeout
        )
        guard (200..<300).contains(response.status) else { throw Self.httpError(response) }
        guard let parsed = try? JSONParser.parse(response.body) else {
            throw ElasticsearchError(code: .malformedResponse, status: response.status, errorType: nil)
        }
        if parsed["errors"]?.boolValue == false { return Array(repeating: .applied, count: request.count) }
        guard let items = parsed["items"]?.arrayValue, items.count == request.count else {
            throw ElasticsearchError(code: .malformedResponse, status: response.status, errorType: nil)
        }
        return items.map { item in
            guard case .object(let wrapper) = item, let first = wrapper.pairs.first else { return .retry(status: 0) }
            let status = first.value["status"]?.intValue ?? 0
            let errorType = first.value["error"]?["type"]?.stringValue
            switch status {
            case 200..<300: return .applied
            case 404 where first.key == "delete" && errorType == nil: return .applied
            case 404: return .indexMissing
            case 409: return .stale
            case 401, 403: return .refused(status: status, errorType: errorType)
            case 429, 500...: return .retry(status: status)
            default: return .rejected(status: status, errorType: errorType)
            }
        }
    }
}
