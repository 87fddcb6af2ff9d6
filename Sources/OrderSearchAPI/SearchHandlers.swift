import ElasticsearchClient
import HTTPTypes
import Hummingbird
import IndexSchema
import JSONSupport
import Logging
import RequestParsing
import Security
import ServiceSupport
import TokenSigning

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
        if case .ownedBy(let customerID) = try context.access(anyResource: searchRoles, customerOnOwn: true) { return customerID }
        return nil
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
            guard let continued = SearchQuery.continuing(text, requested: parameters, scope: scope, signer: signer) else {
                throw Problem.badParameter("cursor", "is not a next_cursor of this query (it is altered, or sent with other parameters than its page's)")
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
}
