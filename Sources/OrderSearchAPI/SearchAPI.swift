import ElasticsearchClient
import Foundation
import Hummingbird
import HTTPTypes
import JSONSupport
import Logging
import OrderDomain
import RequestParsing
import Security
import TokenSigning
import ServiceSupport
import IndexSchema

/// Builds the search API's router (reads Elasticsearch only); `main` and the tests use the same one.
public func buildSearchRouter(client: some SearchBackend, alias: String, auth: AuthConfiguration.Mode, signer: TokenSigner,
                              consistency: ConsistencyWaitPolicy = .init(), logger: Logger) -> Router<AppRequestContext> {
    let publicPaths = AuthenticationMiddleware.defaultPublicPaths.union(StaffPage.paths)
    let router = makeServiceRouter(auth: auth, openAPIDocument: searchAPIDocument, isPublic: { publicPaths.contains($0) }) {
        await client.ping() ? nil : "elasticsearch"
    }
    StaffPage.addRoutes(to: router)
    let search = SearchHandlers(client: client, alias: alias, signer: signer, consistency: consistency,
                                waiters: ConsistencyWaiters(limit: consistency.maxWaiters), logger: logger)
    router.get("/search/orders") { request, context in try await search.search(request, context) }
    router.get("/search/orders/:id") { request, context in
        try await search.document(request, context, id: try ResourceID.require(context, notFound: "no indexed order has this id (yet)"))
    }
    return router
}

/// This API's OpenAPI 3.1 document (`openapi.json` beside this file).
public let searchAPIDocument = OpenAPIDocument.load(.module)

public func buildSearchApplication(
    client: some SearchBackend, alias: String, auth: AuthConfiguration.Mode, signer: TokenSigner, address: HostAndPort,
    limits: HTTPServerLimits = .init(), consistency: ConsistencyWaitPolicy = .init(), logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    buildServiceApplication(
        router: buildSearchRouter(client: client, alias: alias, auth: auth, signer: signer, consistency: consistency, logger: logger),
        name: "order-search-api",
        address: address, limits: limits, logger: logger, onServerRunning: onServerRunning
    )
}

struct SearchHandlers: Sendable {
    let client: any SearchBackend
    let alias: String
    let signer: TokenSigner
    let consistency: ConsistencyWaitPolicy
    let waiters: ConsistencyWaiters
    let logger: Logger
    static let searchTimeout: Duration = .seconds(10)
    /// Roles that may search; `customer` only its own orders.
    static let searchRoles: Set<Role> = [.staff, .fulfilment]

    /// The customer a principal's searches are limited to (nil: all orders), or 403.
    static func scope(of context: AppRequestContext) throws -> String? {
        switch try context.access(anyResource: searchRoles, customerOnOwn: true) {
        case .allowed: return nil
        case .ownedBy(let customerID): return customerID
        case .forbidden: throw Problem.forbidden
        }
    }

    func search(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let started = ContinuousClock.now
        let scope = try Self.scope(of: context)
        let parameters: SearchParameters
        do { parameters = try SearchParameters(query: request.uri.query) } catch {
            throw Problem.badParameter(error.parameter, error.message)
        }
        if let scope, parameters.customerIDs.contains(where: { $0 != scope }) {
            throw Problem(.forbidden, detail: "a customer may only search its own orders",
                          errors: [.init(field: "customer_id", message: "names another customer")])
        }
        var query = SearchQuery(parameters: parameters, scopeCustomerID: scope)
        if let text = parameters.cursor {
            guard let continued = query.continued(after: text, signer: signer) else {
                throw Problem.badParameter("cursor", "is not a cursor of this query (it is altered, or the other parameters changed)")
            }
            query = continued
        }
        let caughtUp = try await waitForConsistency(request, scope: scope)
        let result = try await mapErrors { () async throws(ElasticsearchError) -> JSONValue in
            try await client.search(alias, body: query.body(), timeout: Self.searchTimeout)
        }
        var w = JSONWriter(capacity: 8192)
        try render(result, query: query, into: &w, started: started)
        var headers = HTTPFields()
        if let caughtUp { headers[HTTPField.Name("Read-Model-Caught-Up")!] = caughtUp ? "true" : "false" }
        return Response.json(.ok, bytes: w.bytes, headers: headers)
    }

    func document(_ request: Request, _ context: AppRequestContext, id: String) async throws -> Response {
        let scope = try Self.scope(of: context)
        let caughtUp = try await waitForConsistency(request, scope: scope)
        let found = try await mapErrors { () async throws(ElasticsearchError) -> (source: JSONValue, version: Int64)? in
            try await client.get(alias, id: id)
        }
        guard let found, scope == nil || found.source[.customerID]?.stringValue == scope else {
            throw Problem(.notFound, detail: "no indexed order has this id (yet)")
        }
        var w = JSONWriter(capacity: 2048)
        Self.renderHit(source: found.source, highlight: nil, into: &w)
        var headers = HTTPFields()
        if let caughtUp { headers[HTTPField.Name("Read-Model-Caught-Up")!] = caughtUp ? "true" : "false" }
        if let version = found.source[.version]?.intValue { headers[.eTag] = "\"\(version)\"" }
        return Response.json(.ok, bytes: w.bytes, headers: headers)
    }

    // MARK: - read-your-writes

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
        // A customer waits only for its own writes.
        if let scope, token.customerID != scope {
            throw Problem.badParameter("Consistency-Token", "belongs to another customer's write")
        }
        let wait = try Self.parseWait(request)
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

    func render(_ result: JSONValue, query: SearchQuery, into w: inout JSONWriter, started: ContinuousClock.Instant) throws {
        let parameters = query.parameters
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
            Self.renderHit(source: hit["_source"] ?? .null, highlight: hit["highlight"], into: &w)
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
            w.string(Cursor(fingerprint: query.fingerprint, searchAfter: sort).encoded(with: signer))
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
        // Output keys are the API's (the contract's hit shape); values are read by index field.
        w.raw("{\"id\":"); str(s[.orderID])
        w.raw(",\"version\":"); num(s[.version])
        w.raw(",\"status\":"); str(s[.status])
        w.raw(",\"customer\":{\"id\":"); str(s[.customerID])
        w.raw(",\"name\":"); str(s[.customerName])
        w.raw(",\"email\":"); str(s[.customerEmail])
        w.raw("},\"currency\":"); str(s[.currency])
        w.raw(",\"total\":"); str(s[.total])
        w.raw(",\"item_count\":"); num(s[.itemCount])
        w.raw(",\"items\":[")
        for (i, item) in (s[.items]?.arrayValue ?? []).enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{\"sku\":"); str(item[IndexField.itemSKU.leaf])
            w.raw(",\"name\":"); str(item[IndexField.itemName.leaf])
            w.raw(",\"quantity\":"); num(item[IndexField.itemQuantity.leaf])
            w.raw(",\"unit_price\":"); str(item[IndexField.itemUnitPrice.leaf])
            w.raw("}")
        }
        w.raw("],\"shipping_country\":"); str(s[.shippingCountry])
        w.raw(",\"shipping_city\":"); str(s[.shippingCity])
        w.raw(",\"created_at\":"); str(s[.createdAt])
        w.raw(",\"updated_at\":"); str(s[.updatedAt])
        if let highlight {
            w.raw(",\"highlight\":{")
            var first = true
            for field in SearchQuery.highlightFields {
                guard let fragments = highlight[field.index.path]?.arrayValue else { continue }
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
