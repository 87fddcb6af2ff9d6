import JSONSupport

/// One `_bulk` request body, built incrementally as NDJSON with the trailing newline.
///
/// The body is the only copy of its documents a sender needs to keep: a retry of some items copies
/// their bytes (`subset`), and a refused document is read back from it (`source(of:)`), so a batch
/// holds what it sends and nothing else.
public struct BulkRequest: Sendable {
    public private(set) var body: JSONWriter
    public private(set) var ids: [String] = []
    /// Where each item's lines end in `body` (its start is the previous item's end).
    private var itemEnds: [Int] = []

    /// `capacity`: bytes to reserve, for a caller that knows about how large the body will be
    /// (growing a few MB by doubling holds the old and the new buffer at once).
    public init(capacity: Int = 64 * 1024) {
        body = JSONWriter(capacity: capacity)
    }

    public var count: Int { ids.count }
    public var byteCount: Int { body.bytes.count }

    /// The bytes of item `item`: its action line and, for `index`, its source line.
    private func lines(of item: Int) -> ArraySlice<UInt8> {
        body.bytes[(item == 0 ? 0 : itemEnds[item - 1])..<itemEnds[item]]
    }

    /// The document an `index` item carries, as sent (empty for a `delete`).
    public func source(of item: Int) -> ArraySlice<UInt8> {
        let lines = lines(of: item)
        // JSON escapes every newline inside strings, so the first one ends the action line.
        guard let actionEnd = lines.firstIndex(of: 0x0A), actionEnd + 1 < lines.endIndex else { return [] }
        return lines[(actionEnd + 1)..<(lines.endIndex - 1)]
    }

    /// The items `include` names, in order, copied from this body (no document serialized again);
    /// this request itself when it names them all.
    public func subset(_ include: (Int) -> Bool) -> BulkRequest {
        guard !(0..<count).allSatisfy(include) else { return self }
        var part = BulkRequest(capacity: 0)
        for item in 0..<count where include(item) {
            part.body.rawBytes(lines(of: item))
            part.ids.append(ids[item])
            part.itemEnds.append(part.body.bytes.count)
        }
        return part
    }

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
        itemEnds.append(body.bytes.count)
    }

    /// `delete` with an external version (leaves a tombstone so older writes stay out).
    public mutating func delete(_ index: String, id: String, version: Int64) {
        body.raw("{\"delete\":{\"_index\":"); body.string(index)
        body.raw(",\"_id\":"); body.string(id)
        body.raw(",\"version\":"); body.int(version)
        body.raw(",\"version_type\":\"external\"}}\n")
        ids.append(id)
        itemEnds.append(body.bytes.count)
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
