import Foundation
import HTTPTypes
import Hummingbird
import JSONSupport
import Logging
import OrderDomain
import OrderStore
import PostgresClient
import ServiceSupport

/// Builds the write API's router; `main` and the tests use the same one.
public func buildWriteRouter(service: WriteService, logger: Logger) -> Router<BasicRequestContext> {
    let router = Router(context: BasicRequestContext.self)
    router.add(middleware: RouteMetricsMiddleware())
    router.add(middleware: ProblemMiddleware())
    Observability.addOperationalRoutes(to: router) {
        do {
            try await service.pool.query("SELECT 1")
            return nil
        } catch {
            return "postgresql"
        }
    }
    let handlers = WriteHandlers(service: service, logger: logger)
    router.post("/customers") { request, _ in try await handlers.registerCustomer(request) }
    router.get("/customers/:id") { _, context in try await handlers.getCustomer(try resourceID(context)) }
    router.patch("/customers/:id") { request, context in try await handlers.changeCustomer(request, id: try resourceID(context)) }
    router.post("/orders") { request, _ in try await handlers.placeOrder(request) }
    router.get("/orders/:id") { _, context in try await handlers.getOrder(try resourceID(context)) }
    for action in ["pay", "ship", "deliver", "cancel"] {
        router.post("/orders/:id/\(action)") { request, context in
            try await handlers.orderCommand(action, request, id: try resourceID(context))
        }
    }
    return router
}

/// The `{id}` of the path. Ids are short printable strings; anything else
/// cannot name a resource (and must not reach libpq, which stops at NUL).
func resourceID(_ context: BasicRequestContext) throws -> String {
    let id = try context.parameters.require("id")
    guard (1...100).contains(id.utf8.count), !id.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
        throw Problem(.notFound, detail: "no such resource")
    }
    return id
}

/// Builds the whole write application (server, router) from configuration.
public func buildWriteApplication(
    service: WriteService, address: HostAndPort, logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    Application(
        router: buildWriteRouter(service: service, logger: logger),
        configuration: .init(address: .hostname(address.host, port: address.port), serverName: "order-write-api"),
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
        logger: logger
    )
}

struct WriteHandlers: Sendable {
    let service: WriteService
    let logger: Logger

    // MARK: customers

    func registerCustomer(_ request: Request) async throws -> Response {
        var request = request
        let body = try await RequestBody.read(&request)
        var reader = FieldReader(body.object)
        reader.rejectUnknown(allowed: ["name", "email", "country"])
        let name = reader.string("name"), email = reader.string("email"), country = reader.string("country")
        // Type errors and rule errors together, so every offending field is listed.
        let errors = reader.combined(with: Customer.validate(name: name, email: email, country: country))
        if !errors.isEmpty { throw Self.validationProblem(errors) }
        let context = try commandRequest(request, body: body, method: "POST", path: "/customers")
        return try await respond {
            try await service.registerCustomer(name: name, email: email, country: country, request: context) {
                Self.stored(.created, customerJSON: $0, location: "/customers/\($0.id)")
            }
        }
    }

    func getCustomer(_ id: String) async throws -> Response {
        guard let customer = try await mapErrors({ try await service.customer(id: id) }) else {
            throw Problem(.notFound, detail: "no customer has this id")
        }
        return Response.json(.ok, customer.json, headers: [.eTag: "\"\(customer.version)\""])
    }

    func changeCustomer(_ request: Request, id: String) async throws -> Response {
        var request = request
        let body = try await RequestBody.read(&request)
        var reader = FieldReader(body.object)
        reader.rejectUnknown(allowed: ["name", "email", "country"])
        let name = reader.optionalString("name"), email = reader.optionalString("email"), country = reader.optionalString("country")
        for key in ["name", "email", "country"] where body.object[key]?.isNull == true {
            reader.reportElement(key, "must not be null")
        }
        let errors = reader.combined(with: Customer.validate(name: name, email: email, country: country))
        if !errors.isEmpty { throw Self.validationProblem(errors) }
        let context = try commandRequest(request, body: body, method: "PATCH", path: "/customers/\(id)")
        return try await respond {
            try await service.changeCustomer(id: id, name: name, email: email, country: country, request: context) {
                Self.stored(.ok, customerJSON: $0, location: nil)
            }
        }
    }

    // MARK: orders

    func placeOrder(_ request: Request) async throws -> Response {
        var request = request
        let body = try await RequestBody.read(&request)
        var reader = FieldReader(body.object)
        reader.rejectUnknown(allowed: ["customer_id", "currency", "items", "shipping_address", "note"])
        let customerID = reader.string("customer_id")
        let currency = reader.string("currency")
        let note = reader.optionalString("note")
        var items: [PlaceOrder.Item] = []
        if let array = reader.array("items") {
            for (i, element) in array.enumerated() {
                guard case .object(let itemObject) = element else {
                    reader.reportElement("items[\(i)]", "must be an object")
                    continue
                }
                var itemReader = FieldReader(itemObject, path: "items[\(i)]")
                itemReader.rejectUnknown(allowed: ["sku", "name", "quantity", "unit_price"])
                items.append(PlaceOrder.Item(
                    sku: itemReader.string("sku"), name: itemReader.string("name"),
                    quantity: itemReader.integer("quantity"), unitPrice: itemReader.decimalString("unit_price")
                ))
                reader.merge(itemReader)
            }
        }
        var address = ShippingAddress(line1: "", line2: nil, city: "", postalCode: "", country: "")
        if let addressObject = reader.objectField("shipping_address") {
            var addressReader = FieldReader(addressObject, path: "shipping_address")
            addressReader.rejectUnknown(allowed: ["line1", "line2", "city", "postal_code", "country"])
            address = ShippingAddress(
                line1: addressReader.string("line1"), line2: addressReader.optionalString("line2"),
                city: addressReader.string("city"), postalCode: addressReader.string("postal_code"),
                country: addressReader.string("country")
            )
            reader.merge(addressReader)
        }
        let command = PlaceOrder(customerID: customerID, currency: currency, items: items, shippingAddress: address, note: note)
        var errors = reader.combined(with: Order.validate(command))
        if !errors.isEmpty {
            // List an unknown customer too, so one response names every offending field
            // (for a valid command the transaction checks it under a lock).
            if !customerID.isEmpty, !errors.contains(where: { $0.field == "customer_id" }),
               try await !mapErrors({ try await service.customerExists(id: customerID) }) {
                errors.append(FieldError(field: "customer_id", message: "no customer has this id"))
            }
            throw Self.validationProblem(errors)
        }
        let context = try commandRequest(request, body: body, method: "POST", path: "/orders")
        return try await respond {
            try await service.placeOrder(command, request: context) {
                Self.stored(.created, orderJSON: $0, location: "/orders/\($0.id)")
            }
        }
    }

    func getOrder(_ id: String) async throws -> Response {
        guard let order = try await mapErrors({ try await service.order(id: id) }) else {
            throw Problem(.notFound, detail: "no order has this id")
        }
        return Response.json(.ok, order.json, headers: [.eTag: "\"\(order.version)\""])
    }

    func orderCommand(_ action: String, _ request: Request, id: String) async throws -> Response {
        var request = request
        let body = try await RequestBody.read(&request, allowEmpty: action == "deliver")
        var reader = FieldReader(body.object)
        let command: WriteService.OrderCommand
        switch action {
        case "pay":
            reader.rejectUnknown(allowed: ["payment_reference", "amount"])
            command = .pay(reference: reader.string("payment_reference"), amount: reader.decimalString("amount"))
        case "ship":
            reader.rejectUnknown(allowed: ["carrier", "tracking_number"])
            command = .ship(carrier: reader.string("carrier"), trackingNumber: reader.string("tracking_number"))
        case "deliver":
            reader.rejectUnknown(allowed: [])
            command = .deliver
        default:
            reader.rejectUnknown(allowed: ["reason"])
            command = .cancel(reason: reader.string("reason"))
        }
        if !reader.errors.isEmpty { throw Self.validationProblem(reader.errors) }
        let context = try commandRequest(request, body: body, method: "POST", path: "/orders/\(id)/\(action)")
        return try await respond {
            try await service.execute(command, orderID: id, request: context) { Self.stored(.ok, orderJSON: $0, location: nil) }
        }
    }

    // MARK: shared

    private func commandRequest(_ request: Request, body: RequestBody, method: String, path: String) throws -> WriteService.Request {
        var key: String?
        if let raw = request.headers[HTTPField.Name("Idempotency-Key")!] {
            guard (1...255).contains(raw.utf8.count), raw.utf8.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) else {
                throw Problem.badParameter("Idempotency-Key", "must be 1 to 255 visible ASCII characters")
            }
            key = raw
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
        var fingerprint = Fingerprint()
        fingerprint.add(method)
        fingerprint.add(path)
        fingerprint.add(body.raw)
        return WriteService.Request(idempotencyKey: key, fingerprint: fingerprint.hex, expectedVersion: expectedVersion)
    }

    static func stored(_ status: HTTPResponse.Status, customerJSON customer: Customer, location: String?) -> WriteService.StoredResponse {
        var headers = ["ETag": "\"\(customer.version)\"",
                       "Consistency-Token": ConsistencyToken(aggregateType: .customer, aggregateID: customer.id, version: customer.version).encoded]
        if let location { headers["Location"] = location }
        return .init(status: status.code, headers: headers, body: customer.json)
    }

    static func stored(_ status: HTTPResponse.Status, orderJSON order: Order, location: String?) -> WriteService.StoredResponse {
        var headers = ["ETag": "\"\(order.version)\"",
                       "Consistency-Token": ConsistencyToken(aggregateType: .order, aggregateID: order.id, version: order.version).encoded]
        if let location { headers["Location"] = location }
        return .init(status: status.code, headers: headers, body: order.json)
    }

    static func validationProblem(_ errors: [FieldError]) -> Problem {
        Problem.validation(errors.map { .init(field: $0.field, message: $0.message) })
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
        } catch let error as PostgresError where error.code == .connection || error.code == .timeout {
            logger.warning("database unavailable", metadata: ["db.error": "\(error)"])
            throw Problem.unavailable("the database")
        } catch let error as PostgresError {
            logger.error("database error", metadata: ["db.error": "\(error)"])
            throw Problem(.internalServerError, detail: "an unexpected error occurred")
        }
    }
}

/// 128-bit FNV-1a over the request: identifies "the same request" for idempotency.
struct Fingerprint {
    private var a: UInt64 = 0xcbf2_9ce4_8422_2325
    private var b: UInt64 = 0x8422_2325_cbf2_9ce4

    mutating func add(_ s: String) { add(Array(s.utf8)); add([0]) }

    mutating func add(_ bytes: [UInt8]) {
        for byte in bytes {
            a = (a ^ UInt64(byte)) &* 0x100_0000_01b3
            b = (b ^ UInt64(byte ^ 0x5a)) &* 0x100_0000_01b3
        }
    }

    var hex: String {
        func h(_ v: UInt64) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: 16 - s.count) + s
        }
        return h(a) + h(b)
    }
}
