import ElasticsearchClient
import Foundation
import JSONSupport
import LibPQClient
import Logging
import OrderStore
import OrderWriteAPI
import Security
import ServiceSupport
import Testing
import TokenSigning

/// The write API through its real application factory with no database: every
/// refusal that must happen before a database call (media type, size, syntax,
/// validation, roles, ids, headers), and the mapping of an unreachable database
/// to 503. The pool points at a closed port, so any database call would show as 503.
@Suite struct WriteRouterTests {
    static let secret = String(repeating: "w", count: 40)

    struct Running {
        let task: Task<Void, any Error>
        let base: String
        /// Shared: every client keeps its threads until it is shut down.
        static let sharedClient = CurlHTTPClient()
        var http: CurlHTTPClient { Self.sharedClient }

        func call(_ method: String, _ path: String, body: String? = nil, contentType: String? = "application/json",
                  roles: [Role]? = [.staff], customerID: String? = nil, headers: [(String, String)] = [])
            async throws -> (status: Int, json: JSONValue, headers: [(String, String)], bytes: Int)
        {
            var all = headers
            if let roles {
                let token = try await AccessTokenMinter(secret: WriteRouterTests.secret).mint(subject: "t", roles: roles, customerID: customerID)
                all.append(("Authorization", "Bearer \(token)"))
            }
            if body != nil, let contentType { all.append(("Content-Type", contentType)) }
            let response = try await http.execute(method: method, url: base + path, headers: all, body: body.map { Array($0.utf8) })
            return (response.status, (try? JSONParser.parse(response.body)) ?? .null, response.headers, response.body.count)
        }
    }

    /// A pool on a closed port, shared by every test here: each pool keeps its threads until it is shut down.
    static let unreachablePool = PostgresPool(configuration: .init(connectionString: "postgresql://nobody@127.0.0.1:1/none", size: 2,
                                                                   acquireTimeout: .seconds(2)), logger: Logger(label: "test"))

    static func start() async throws -> Running {
        let service = WriteService(pool: unreachablePool, logger: Logger(label: "test"))
        let auth = try await AuthConfiguration(jwtSecret: secret).mode()
        let signer = try TokenSigner(key: String(repeating: "s", count: 40))
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        let app = buildWriteApplication(service: service, auth: auth, signer: signer, address: HostAndPort(host: "127.0.0.1", port: 0),
                                        logger: Logger(label: "test"), onServerRunning: { continuation.yield($0) })
        let task = Task { try await app.run() }
        var iterator = stream.makeAsyncIterator()
        guard let port = await iterator.next() else { throw CancellationError() }
        return Running(task: task, base: "http://127.0.0.1:\(port)")
    }

    static func fields(_ json: JSONValue) -> [String] { (json["errors"]?.arrayValue ?? []).compactMap { $0["field"]?.stringValue } }

    @Test func mediaTypeSizeAndSyntaxAreCheckedFirst() async throws {
        let api = try await Self.start()
        defer { api.task.cancel() }
        #expect(try await api.call("POST", "/customers", body: "{}", contentType: "text/plain").status == 415)
        #expect(try await api.call("POST", "/customers", body: String(repeating: " ", count: (1 << 20) + 1)).status == 413)
        let malformed = try await api.call("POST", "/customers", body: #"{"name": "#)
        #expect(malformed.status == 400 && malformed.json["title"]?.stringValue == "Malformed JSON")
        #expect(Self.fields(try await api.call("POST", "/customers", body: "[1]").json) == ["(body)"])
    }

    @Test func validationListsEveryFieldWithoutTheDatabase() async throws {
        let api = try await Self.start()
        defer { api.task.cancel() }
        let customer = try await api.call("POST", "/customers", body: #"{"name": " ", "email": "nope", "country": "XX", "age": 3}"#)
        #expect(customer.status == 422)
        #expect(Set(Self.fields(customer.json)) == ["name", "email", "country", "age"])
        let order = try await api.call("POST", "/orders", body: #"{"customer_id": "", "currency": "eur", "items": [{"sku": "a b", "name": "", "quantity": 0, "unit_price": 1}], "shipping_address": {}}"#)
        #expect(order.status == 422)
        #expect(Set(Self.fields(order.json)).isSuperset(of: ["customer_id", "currency", "items[0].sku", "items[0].name", "items[0].quantity",
                                                              "items[0].unit_price", "shipping_address.line1"]))
        let many = try await api.call("POST", "/orders", body: #"{"customer_id": "", "items": [\#(Array(repeating: "{}", count: 5000).joined(separator: ","))]}"#)
        #expect(many.status == 422 && Self.fields(many.json).contains("items") && !Self.fields(many.json).contains("items[0]"))
        #expect(try await api.call("POST", "/orders/ord_1/pay", body: #"{"amount": 5}"#, roles: [.payments]).status == 422)
    }

    @Test func rolesIdsAndHeadersAreCheckedBeforeTheDatabase() async throws {
        let api = try await Self.start()
        defer { api.task.cancel() }
        let anonymous = try await api.call("GET", "/orders/ord_1", roles: nil)
        #expect(anonymous.status == 401 && anonymous.headers.contains { $0 == ("www-authenticate", "Bearer") })
        #expect(try await api.call("POST", "/customers", body: "{}", roles: [.fulfilment]).status == 403)
        #expect(try await api.call("POST", "/orders/ord_1/pay", body: "{}", roles: [.fulfilment]).status == 403)
        #expect(try await api.call("POST", "/orders", body: #"{"customer_id": "cus_other"}"#, roles: [.customer], customerID: "cus_me").status == 403)
        #expect(try await api.call("GET", "/customers/cus_other", roles: [.customer], customerID: "cus_me").status == 404)
        for id in ["..", "a%20b", "%00", String(repeating: "x", count: 101)] {
            #expect(try await api.call("GET", "/orders/\(id)").status == 404, "\(id)")
        }
        let badKey = try await api.call("POST", "/orders/ord_1/deliver", body: "{}", roles: [.fulfilment], headers: [("Idempotency-Key", "has space")])
        #expect(badKey.status == 400 && Self.fields(badKey.json) == ["Idempotency-Key"])
        let badTag = try await api.call("POST", "/orders/ord_1/deliver", body: "{}", roles: [.fulfilment], headers: [("If-Match", "v1")])
        #expect(badTag.status == 400 && Self.fields(badTag.json) == ["If-Match"])
        let wrongMethod = try await api.call("DELETE", "/orders/ord_1")
        #expect(wrongMethod.status == 405 && wrongMethod.headers.contains { $0 == ("allow", "GET") })
    }

    @Test func anUnreachableDatabaseIsA503WithRetryAfterThatShowsNothingOfIt() async throws {
        let api = try await Self.start()
        defer { api.task.cancel() }
        let reply = try await api.call("GET", "/orders/ord_1")
        #expect(reply.status == 503)
        #expect(reply.headers.contains { $0.0 == "retry-after" })
        #expect(!reply.json.serialized.contains("nobody") && !reply.json.serialized.contains("SELECT"))
        #expect(try await api.call("GET", "/ready", roles: nil).status == 503)
        #expect(try await api.call("GET", "/health", roles: nil).status == 200)
    }
}
