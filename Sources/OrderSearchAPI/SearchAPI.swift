import Foundation
import Hummingbird
import Logging
import Security
import ServiceSupport
import TokenSigning

/// Builds the search API's router (reads Elasticsearch only); `main` and the tests use the same one.
public func buildSearchRouter(client: some SearchBackend, alias: String, auth: AuthConfiguration.Mode, signer: TokenSigner,
                              consistency: ConsistencyWaitPolicy = .init(), logger: Logger) -> Router<AppRequestContext> {
    let publicPaths = AuthenticationMiddleware.defaultPublicPaths.union(StaffPage.paths)
    let router = makeServiceRouter(auth: auth, openAPIDocument: searchAPIDocument, isPublic: { publicPaths.contains($0) }) {
        // Ready only when the alias can be read: with the cluster up but no index behind the alias
        // (a cluster that came back empty, before the indexers' rebuild), every search gets 503.
        await client.probe(alias) == .readable ? nil : "elasticsearch"
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
