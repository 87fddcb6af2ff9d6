import Foundation
import Hummingbird
import Logging
import OrderStore
import Security
import ServiceSupport
import TokenSigning

/// Builds the write API's router; `main` and the tests use the same one.
public func buildWriteRouter(service: WriteService, auth: AuthConfiguration.Mode, signer: TokenSigner, logger: Logger)
    -> Router<AppRequestContext>
{
    let router = makeServiceRouter(auth: auth, openAPIDocument: writeAPIDocument) {
        do {
            try await service.pool.query("SELECT 1")
            return nil
        } catch {
            return "postgresql"
        }
    }
    let handlers = WriteHandlers(service: service, signer: signer, logger: logger)
    router.post("/customers") { request, context in try await handlers.registerCustomer(request, context) }
    router.get("/customers/:id") { _, context in try await handlers.getCustomer(try ResourceID.require(context), context) }
    router.patch("/customers/:id") { request, context in try await handlers.changeCustomer(request, context, id: try ResourceID.require(context)) }
    router.post("/orders") { request, context in try await handlers.placeOrder(request, context) }
    router.get("/orders/:id") { _, context in try await handlers.getOrder(try ResourceID.require(context), context) }
    for action in WriteHandlers.OrderAction.allCases {
        router.post("/orders/:id/\(action.rawValue)") { request, context in
            try await handlers.orderCommand(action, request, context, id: try ResourceID.require(context))
        }
    }
    return router
}

/// This API's OpenAPI 3.1 document (`openapi.json` beside this file).
public let writeAPIDocument = OpenAPIDocument.load(.module)

/// Builds the whole write application (server, router) from configuration.
public func buildWriteApplication(
    service: WriteService, auth: AuthConfiguration.Mode, signer: TokenSigner, address: HostAndPort, limits: HTTPServerLimits = .init(),
    logger: Logger, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    buildServiceApplication(
        router: buildWriteRouter(service: service, auth: auth, signer: signer, logger: logger), name: "order-write-api",
        address: address, limits: limits, logger: logger, onServerRunning: onServerRunning
    )
}
