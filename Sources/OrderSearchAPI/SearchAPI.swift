import ElasticsearchClient
import Hummingbird
import HTTPTypes
import JSONSupport
import Logging
import OrderDomain
import ReadModel
import ServiceSupport

/// Builds the search API's router (reads Elasticsearch only); `main` and the tests use the same one.
public func buildSearchRouter(client: ElasticsearchClient, alias: String, logger: Logger) -> Router<BasicRequestContext> {
    let router = Router(context: BasicRequestContext.self)
    router.add(middleware: RouteMetricsMiddleware())
    router.add(middleware: ProblemMiddleware())
    Observability.addOperationalRoutes(to: router) {
        await client.ping() ? nil : "elasticsearch"
    }
    let search = SearchHandlers(client: client, alias: alias, logger: logger)
    router.get("/search/orders") { request, _ in try await search.search(request) }
    router.get("/search/orders/:id") { request, context in try await search.document(request, id: try context.parameters.require("id")) }
    return router
}

public func buildSearchApplication(
    client: ElasticsearchClient, alias: String, address: HostAndPort, logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    Application(
        router: buildSearchRouter(client: client, alias: alias, logger: logger),
        configuration: .init(address: .hostname(address.host, port: address.port), serverName: "order-search-api"),
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
        logger: logger
    )
}

struct SearchHandlers: Sendable {
    let client: ElasticsearchClient
    let alias: String
    let logger: Logger
    static let searchTimeout: Duration = .seconds(10)

    func search(_ request: Request) async throws -> Response {
        let started = ContinuousClock.now
        let parameters: SearchParameters
        do { parameters = try SearchParameters(query: request.uri.query) } catch {
            throw Problem.badParameter(error.parameter, error.message)
        }
        var searchAfter: [JSONValue]?
        let query0 = SearchQuery(parameters: parameters, searchAfter: nil)
        if let text = parameters.cursor {
            guard let cursor = Cursor(encoded: text, fingerprint: parameters.fingerprint, sortFields: query0.sortFields) else {
                throw Problem.badParameter("cursor", "is not a cursor of this query (it is corrupted, or the other parameters changed)")
            }
            searchAfter = cursor.searchAfter
        }
        let caughtUp = try await waitForConsistency(request)
        let query = SearchQuery(parameters: parameters, searchAfter: searchAfter)
        let result = try await mapErrors { () async throws(ElasticsearchError) -> JSONValue in
            try await client.search(alias, body: query.body(), timeout: Self.searchTimeout)
        }
        var w = JSONWriter(capacity: 8192)
        try Self.render(result, parameters: parameters, query: query, into: &w, started: started)
        var headers = HTTPFields()
        if let caughtUp { headers[HTTPField.Name("Read-Model-Caught-Up")!] = caughtUp ? "true" : "false" }
        return Response.json(.ok, bytes: w.bytes, headers: headers)
    }

    func document(_ request: Request, id: String) async throws -> Response {
        let caughtUp = try await waitForConsistency(request)
        let found = try await mapErrors { () async throws(ElasticsearchError) -> (source: JSONValue, version: Int64)? in
            try await client.get(alias, id: id)
        }
        guard let found else { throw Problem(.notFound, detail: "no indexed order has this id (yet)") }
        var w = JSONWriter(capacity: 2048)
        Self.renderHit(source: found.source, highlight: nil, into: &w)
        var headers = HTTPFields()
        if let caughtUp { headers[HTTPField.Name("Read-Model-Caught-Up")!] = caughtUp ? "true" : "false" }
        if let version = found.source["version"]?.intValue { headers[.eTag] = "\"\(version)\"" }
        return Response.json(.ok, bytes: w.bytes, headers: headers)
    }

    // MARK: - read-your-writes

    /// Waits (bounded by `Consistency-Wait`) until the write named by the
    /// `Consistency-Token` is searchable. Checked with `_count` queries, which
    /// see what searches see (after a refresh on real Elasticsearch).
    func waitForConsistency(_ request: Request) async throws -> Bool? {
        guard let raw = request.headers[HTTPField.Name("Consistency-Token")!] else {
            if request.headers[HTTPField.Name("Consistency-Wait")!] != nil {
                _ = try Self.parseWait(request)
            }
            return nil
        }
        guard let token = ConsistencyToken(encoded: raw) else {
            throw Problem.badParameter("Consistency-Token", "is not a token returned by the write API")
        }
        let wait = try Self.parseWait(request)
        let deadline = ContinuousClock.now + .milliseconds(wait)
        while true {
            if try await isApplied(token) { return true }
            if ContinuousClock.now >= deadline { return false }
            try await Task.sleep(for: .milliseconds(min(25, max(1, wait))))
        }
    }

    static func parseWait(_ request: Request) throws -> Int {
        guard let text = request.headers[HTTPField.Name("Consistency-Wait")!] else { return 1000 }
        guard let ms = Int(text.trimmingSpaces), (0...10_000).contains(ms) else {
            throw Problem.badParameter("Consistency-Wait", "must be an integer number of milliseconds from 0 to 10000")
        }
        return ms
    }

    private func isApplied(_ token: ConsistencyToken) async throws -> Bool {
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

    private func appliedCount(_ token: ConsistencyToken) async throws(ElasticsearchError) -> Bool {
            switch token.aggregateType {
            case .order:
                let query: JSONValue = ["bool": ["filter": [["term": ["order_id": .string(token.aggregateID)]],
                                                            ["range": ["version": ["gte": .int(token.version)]]]]]]
                return try await client.count(alias, query: query) > 0
            case .customer:
                // Applied when no document of this customer still shows an older version.
                let query: JSONValue = ["bool": ["filter": [["term": ["customer.id": .string(token.aggregateID)]],
                                                            ["range": ["customer.version": ["lt": .int(token.version)]]]]]]
                return try await client.count(alias, query: query) == 0
            }
    }

    // MARK: - errors

    /// Elasticsearch failures become 502/503/504 problems that never show the request.
    private func mapErrors<T>(_ body: () async throws(ElasticsearchError) -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            logger.warning("elasticsearch request failed", metadata: ["es.error": "\(error)"])
            switch error.code {
            case .timeout: throw Problem(.gatewayTimeout, detail: "the search cluster did not answer in time")
            case .unavailable: throw Problem.unavailable("the search cluster")
            case .http where error.status == 404: throw Problem.unavailable("the order index")
            case .http where error.status == 429 || error.status == 503: throw Problem.unavailable("the search cluster")
            case .http, .malformedResponse: throw Problem(.badGateway, detail: "the search cluster could not answer this query")
            }
        }
    }

    // MARK: - rendering

    static func render(_ result: JSONValue, parameters: SearchParameters, query: SearchQuery, into w: inout JSONWriter,
                       started: ContinuousClock.Instant) throws {
        guard let hitsObject = result["hits"], let hits = hitsObject["hits"]?.arrayValue else {
            throw Problem(.badGateway, detail: "the search cluster sent an unexpected answer")
        }
        let total = hitsObject["total"]?["value"]?.intValue ?? 0
        let exact = (hitsObject["total"]?["relation"]?.stringValue ?? "eq") == "eq"
        w.raw("{\"total\":"); w.int(total)
        w.raw(",\"total_exact\":"); w.bool(exact)
        w.raw(",\"hits\":[")
        let page = hits.prefix(parameters.size)
        for (i, hit) in page.enumerated() {
            if i > 0 { w.raw(",") }
            renderHit(source: hit["_source"] ?? .null, highlight: hit["highlight"], into: &w)
        }
        w.raw("],\"facets\":{")
        let aggregations = result["aggregations"]
        for (i, name) in ["status", "country", "currency"].enumerated() {
            if i > 0 { w.raw(",") }
            w.key(name)
            w.raw("[")
            var first = true
            for bucket in aggregations?[name]?["values"]?["buckets"]?.arrayValue ?? [] {
                guard let key = bucket["key"]?.stringValue, let count = bucket["doc_count"]?.intValue, count > 0 else { continue }
                if !first { w.raw(",") }
                first = false
                w.raw("{\"value\":"); w.string(key); w.raw(",\"count\":"); w.int(count); w.raw("}")
            }
            w.raw("]")
        }
        w.raw(",\"total_range\":[")
        var first = true
        let rangeBuckets = aggregations?["total_range"]?["values"]?["buckets"]?.arrayValue ?? []
        for bucket in SearchQuery.totalBuckets {
            let count = rangeBuckets.first { $0["key"]?.stringValue == bucket.key }?["doc_count"]?.intValue ?? 0
            guard count > 0 else { continue }
            if !first { w.raw(",") }
            first = false
            w.raw("{\"value\":"); w.string(bucket.key)
            w.raw(",\"from\":"); w.string(bucket.from)
            w.raw(",\"to\":"); w.optionalString(bucket.to)
            w.raw(",\"count\":"); w.int(count); w.raw("}")
        }
        w.raw("],\"created_month\":[")
        first = true
        for bucket in aggregations?["created_month"]?["values"]?["buckets"]?.arrayValue ?? [] {
            guard let key = bucket["key"]?.stringValue, let count = bucket["doc_count"]?.intValue, count > 0 else { continue }
            if !first { w.raw(",") }
            first = false
            w.raw("{\"value\":"); w.string(key); w.raw(",\"count\":"); w.int(count); w.raw("}")
        }
        w.raw("]},\"next_cursor\":")
        if hits.count > parameters.size, let last = page.last, let sort = last["sort"]?.arrayValue {
            w.string(Cursor(fingerprint: parameters.fingerprint, searchAfter: sort).encoded)
        } else {
            w.raw("null")
        }
        let elapsed = ContinuousClock.now - started
        w.raw(",\"took_ms\":"); w.int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
        w.raw("}")
    }

    static func renderHit(source s: JSONValue, highlight: JSONValue?, into w: inout JSONWriter) {
        func str(_ v: JSONValue?) { if let v, case .string(let x) = v { w.string(x) } else { w.raw("null") } }
        func num(_ v: JSONValue?) { if let v, case .number(let x) = v { w.rawBytes(x.utf8) } else { w.raw("null") } }
        w.raw("{\"id\":"); str(s["order_id"])
        w.raw(",\"version\":"); num(s["version"])
        w.raw(",\"status\":"); str(s["status"])
        w.raw(",\"customer\":{\"id\":"); str(s["customer"]?["id"])
        w.raw(",\"name\":"); str(s["customer"]?["name"])
        w.raw(",\"email\":"); str(s["customer"]?["email"])
        w.raw("},\"currency\":"); str(s["currency"])
        w.raw(",\"total\":"); str(s["total"])
        w.raw(",\"item_count\":"); num(s["item_count"])
        w.raw(",\"items\":[")
        for (i, item) in (s["items"]?.arrayValue ?? []).enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{\"sku\":"); str(item["sku"])
            w.raw(",\"name\":"); str(item["name"])
            w.raw(",\"quantity\":"); num(item["quantity"])
            w.raw(",\"unit_price\":"); str(item["unit_price"])
            w.raw("}")
        }
        w.raw("],\"shipping_country\":"); str(s["shipping_country"])
        w.raw(",\"shipping_city\":"); str(s["shipping_city"])
        w.raw(",\"created_at\":"); str(s["created_at"])
        w.raw(",\"updated_at\":"); str(s["updated_at"])
        if let highlight {
            w.raw(",\"highlight\":{")
            var first = true
            for field in SearchQuery.highlightFields {
                guard let fragments = highlight[field.index]?.arrayValue else { continue }
                if !first { w.raw(",") }
                first = false
                w.key(field.api)
                w.value(.array(fragments))
            }
            w.raw("}")
        } else {
            w.raw(",\"highlight\":{}")
        }
        w.raw("}")
    }
}
