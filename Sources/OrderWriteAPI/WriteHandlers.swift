import Foundation
import HTTPTypes
import Hummingbird
import JSONSupport
import Logging
import OrderDomain
import OrderStore
import LibPQClient
import RequestParsing
import Security
import TokenSigning
import ServiceSupport

struct WriteHandlers: Sendable {
    let service: WriteService
    let signer: TokenSigner
    let logger: Logger

    enum OrderAction: String, CaseIterable, Sendable {
        case pay, ship, deliver, cancel

        /// The roles of the contract's table that may run this command on any order.
        var roles: Set<Role> {
            switch self {
            case .pay: [.staff, .payments]
            case .ship, .deliver: [.staff, .fulfilment]
            case .cancel: [.staff]
            }
        }
    }

    // MARK: customers

    func registerCustomer(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let principal = try context.requireRole([.staff])
        var request = request
        let body = try await RequestBody.read(&request)
        let (customer, errors) = CommandBodies.newCustomer(body.object)
        if !errors.isEmpty { throw Self.validationProblem(errors) }
        let command = try commandRequest(request, principal, body: body, method: "POST", path: "/customers")
        return try await respond {
            try await service.registerCustomer(name: customer.name, email: customer.email, country: customer.country, request: command) {
                stored(.created, customerJSON: $0, location: "/customers/\($0.id)")
            }
        }
    }

    func getCustomer(_ id: String, _ context: AppRequestContext) async throws -> Response {
        try requireCustomerAccess(id, context)
        guard let customer = try await mapErrors({ try await service.customer(id: id) }) else {
            throw Problem(.notFound, detail: "no customer has this id")
        }
        return Response.json(.ok, customer.json, headers: [.eTag: "\"\(customer.version)\""])
    }

    func changeCustomer(_ request: Request, _ context: AppRequestContext, id: String) async throws -> Response {
        let principal = try requireCustomerAccess(id, context)
        var request = request
        let body = try await RequestBody.read(&request)
        let (change, errors) = CommandBodies.customerChange(body.object)
        if !errors.isEmpty { throw Self.validationProblem(errors) }
        let command = try commandRequest(request, principal, body: body, method: "PATCH", path: "/customers/\(id)")
        return try await respond {
            try await service.changeCustomer(id: id, name: change.name, email: change.email, country: change.country, request: command) {
                stored(.ok, customerJSON: $0, location: nil)
            }
        }
    }

    // MARK: orders

    func placeOrder(_ request: Request, _ context: AppRequestContext) async throws -> Response {
        let principal = try context.requireRole([.staff, .customer])
        var request = request
        let body = try await RequestBody.read(&request)
        let (command, commandErrors) = CommandBodies.placeOrder(body.object)
        var errors = commandErrors
        let customerID = command.customerID
        // A customer places orders only for itself; checked before any database
        // call, so other customers' ids cannot be probed through validation.
        if !principal.has(.staff), !customerID.isEmpty, customerID != principal.customerID { throw Problem.forbidden }
        if !errors.isEmpty {
            // List an unknown customer too, so one response names every offending field
            // (for a valid command the transaction checks it under a lock).
            if !customerID.isEmpty, errors.count < FieldError.maximumListed, !errors.contains(where: { $0.field == "customer_id" }),
               try await !mapErrors({ try await service.customerExists(id: customerID) }) {
                errors.append(FieldError(field: "customer_id", message: "no customer has this id"))
            }
            throw Self.validationProblem(errors)
        }
        let commandRequest = try commandRequest(request, principal, body: body, method: "POST", path: "/orders")
        return try await respond {
            try await service.placeOrder(command, request: commandRequest) {
                stored(.created, orderJSON: $0, location: "/orders/\($0.id)")
            }
        }
    }

    func getOrder(_ id: String, _ context: AppRequestContext) async throws -> Response {
        let access = try context.access(anyResource: [.staff, .payments, .fulfilment], customerOnOwn: true)
        guard let order = try await mapErrors({ try await service.order(id: id) }), access.permits(ownerCustomerID: order.customerID) else {
            throw Problem(.notFound, detail: "no order has this id")
        }
        return Response.json(.ok, order.json, headers: [.eTag: "\"\(order.version)\""])
    }

    func orderCommand(_ action: OrderAction, _ request: Request, _ context: AppRequestContext, id: String) async throws -> Response {
        let access = try context.access(anyResource: action.roles, customerOnOwn: action == .cancel)
        if case .ownedBy = access {
            // An order's customer never changes, so checking before the command's transaction is race-free.
            let order = try await mapErrors { try await service.order(id: id) }
            guard let order, access.permits(ownerCustomerID: order.customerID) else { throw Problem(.notFound, detail: "no such resource") }
        }
        var request = request
        let body = try await RequestBody.read(&request, allowEmpty: action == .deliver)
        var reader = FieldReader(body.object)
        let command: WriteService.OrderCommand
        switch action {
        case .pay:
            reader.rejectUnknown(allowed: CommandBodies.paymentFields)
            command = .pay(reference: reader.string("payment_reference"), amount: reader.decimalString("amount"))
        case .ship:
            reader.rejectUnknown(allowed: CommandBodies.shipmentFields)
            command = .ship(carrier: reader.string("carrier"), trackingNumber: reader.string("tracking_number"))
        case .deliver:
            reader.rejectUnknown(allowed: [])
            command = .deliver
        case .cancel:
            reader.rejectUnknown(allowed: CommandBodies.cancellationFields)
            command = .cancel(reason: reader.string("reason"))
        }
        if !reader.errors.isEmpty { throw Self.validationProblem(reader.errors) }
        let commandRequest = try commandRequest(request, try context.requirePrincipal(), body: body, method: "POST",
                                                path: "/orders/\(id)/\(action.rawValue)")
        return try await respond {
            try await service.execute(command, orderID: id, request: commandRequest) { stored(.ok, orderJSON: $0, location: nil) }
        }
    }

    // MARK: shared

    /// Customer records: staff for any, a customer for its own (another's is 404).
    @discardableResult
    private func requireCustomerAccess(_ id: String, _ context: AppRequestContext) throws -> Principal {
        let access = try context.access(anyResource: [.staff], customerOnOwn: true)
        guard access.permits(ownerCustomerID: id) else { throw Problem(.notFound, detail: "no customer has this id") }
        return try context.requirePrincipal()
    }

    private func commandRequest(_ request: Request, _ principal: Principal, body: RequestBody, method: String, path: String) throws
        -> WriteService.Request
    {
        var key: String?
        if let raw = request.headers[HTTPField.Name("Idempotency-Key")!] {
            guard (1...255).contains(raw.utf8.count), raw.utf8.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) else {
                throw Problem.badParameter("Idempotency-Key", "must be 1 to 255 visible ASCII characters")
            }
            // Keys belong to the token's subject: the same key from two principals is two keys.
            key = Digest.sha256Hex(["idempotency-key", principal.subject, raw])
        }
        var expectedVersion: Int?
        if let ifMatch = request.headers[.ifMatch] {
            var tag = Substring(ifMatch.trimmingCharacters(in: .whitespaces))
            if tag != "*" {
                if tag.hasPrefix("W/") { tag = tag.dropFirst(2) }
                if tag.hasPrefix("\""), tag.hasSuffix("\""), tag.count >= 2 { tag = tag.dropFirst().dropLast() }
                guard let version = Int(tag), version >= 0 else {
                    throw Problem.badParameter("If-Match", "must be an ETag such as \"3\"")
                }
                expectedVersion = version
            }
        }
        // The fingerprint only matters to a replay check, i.e. with an Idempotency-Key.
        let fingerprint = key == nil ? "" : Digest.sha256Hex([method, path, String(decoding: body.raw, as: UTF8.self)])
        return WriteService.Request(idempotencyKey: key, fingerprint: fingerprint, expectedVersion: expectedVersion)
    }

    func stored(_ status: HTTPResponse.Status, customerJSON customer: Customer, location: String?) -> WriteService.StoredResponse {
        let token = ConsistencyToken(aggregateType: .customer, aggregateID: customer.id, version: customer.version, customerID: customer.id)
        return stored(status, token: token, body: customer.json, location: location)
    }

    func stored(_ status: HTTPResponse.Status, orderJSON order: Order, location: String?) -> WriteService.StoredResponse {
        let token = ConsistencyToken(aggregateType: .order, aggregateID: order.id, version: order.version, customerID: order.customerID)
        return stored(status, token: token, body: order.json, location: location)
    }

    private func stored(_ status: HTTPResponse.Status, token: ConsistencyToken, body: String, location: String?) -> WriteService.StoredResponse {
        var headers = ["ETag": "\"\(token.version)\"", "Consistency-Token": signer.sign(token.payload, for: .consistency)]
        if let location { headers["Location"] = location }
        return .init(status: status.code, headers: headers, body: body)
    }

    static func validationProblem(_ errors: [FieldError]) -> Problem {
        Problem.validation(errors.prefix(FieldError.maximumListed).map { .init(field: $0.field, message: $0.message) })
    }

    private func respond<V>(_ body: () async throws -> WriteService.Outcome<V>) async throws -> Response {
        let outcome = try await mapErrors(body)
        let stored: WriteService.StoredResponse
        var replayed = false
        switch outcome {
        case .executed(_, let response): stored = response
        case .replayed(let response): stored = response; replayed = true
        }
        var headers = HTTPFields()
        for (name, value) in stored.headers.sorted(by: { $0.key < $1.key }) {
            if let field = HTTPField.Name(name) { headers[field] = value }
        }
        if replayed { headers[HTTPField.Name("Idempotent-Replayed")!] = "true" }
        return Response.json(HTTPResponse.Status(code: stored.status), stored.body, headers: headers)
    }

    /// The one place where store and domain errors become HTTP problems.
    private func mapErrors<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as WriteService.CommandError {
            switch error {
            case .notFound: throw Problem(.notFound, detail: "no such resource")
            case .domain(.validation(let errors)): throw Self.validationProblem(errors)
            case .domain(.invalidTransition(let command, let current)):
                throw Problem(.conflict, title: "Transition not allowed", detail: "cannot \(command) an order that is \(current.rawValue)",
                              extensions: [("current_status", current.rawValue)])
            case .versionMismatch(let current):
                throw Problem(.preconditionFailed, detail: "If-Match does not match the current version", headers: [.eTag: "\"\(current)\""])
            case .emailTaken: throw Problem(.conflict, detail: "a customer with this email already exists")
            case .idempotencyKeyReused:
                throw Problem(.unprocessableContent, detail: "this Idempotency-Key was used with a different request",
                              errors: [.init(field: "Idempotency-Key", message: "was used with a different request")])
            }
        } catch let error as LibPQError where [.connection, .timeout, .queryCanceled].contains(error.code) {
            logger.warning("database unavailable", metadata: ["db.error": "\(error)"])
            throw Problem.unavailable("the database")
        } catch let error as LibPQError {
            logger.error("database error", metadata: ["db.error": "\(error)"])
            throw Problem(.internalServerError, detail: "an unexpected error occurred")
        }
    }
}
