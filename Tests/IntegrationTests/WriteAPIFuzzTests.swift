import JSONSupport
import Testing

/// No input may yield a 5xx: thousands of mutated command bodies, over HTTP.
@Suite struct WriteAPIFuzzTests {
    struct Generator {
        var rng = SystemRandomNumberGenerator()

        mutating func string() -> String {
            let pieces = ["a", "Z", "0", " ", "\u{0}", "\u{1}", "\u{7f}", "é", "日本", "🙂", "\u{202e}", "\"", "\\", "'", ";--", "%00", "\n",
                          "DROP TABLE orders", "<script>", "{", "]"]
            let count = [0, 1, 3, 10, 64, 65, 200, 201, 3000][Int.random(in: 0..<9, using: &rng)]
            return String((0..<count).map { _ in pieces.randomElement(using: &rng)! }.joined().prefix(count == 3000 ? 3000 : count * 3))
        }

        mutating func number() -> JSONValue {
            .number(["0", "-1", "1", "1000", "1001", "1.5", "1e3", "1e400", "-0", "9223372036854775807", "9223372036854775808",
                     "0.001", "19.99", "100000000000000000000"].randomElement(using: &rng)!)
        }

        mutating func decimal() -> JSONValue {
            .string(["19.99", "0", "0.00", "-1", "1.999", "1000000", "1000000.01", "99999999999999.99", "1e3", " 1", "NaN", "",
                     "12345678901234"].randomElement(using: &rng)!)
        }

        /// Sometimes the right kind of value, sometimes anything.
        mutating func value(_ good: () -> JSONValue) -> JSONValue? {
            switch Int.random(in: 0..<10, using: &rng) {
            case 0: return nil
            case 1: return .null
            case 2: return number()
            case 3: return .bool(true)
            case 4: return .array([.string(string())])
            case 5: return .object(JSONObject([("x", .string(string()))]))
            case 6: return .string(string())
            default: return good()
            }
        }

        mutating func object(_ fields: [(String, () -> JSONValue)]) -> JSONValue {
            var object = JSONObject()
            for (key, good) in fields { if let v = value(good) { object[key] = v } }
            if Int.random(in: 0..<8, using: &rng) == 0 { object[string()] = .string(string()) }
            return .object(object)
        }
    }

    @Test func mutatedCommandsNeverYield5xx() async throws {
        try await WriteAPIHarness.with() { api in
            let customer = try await api.createCustomer()
            let order = try #require(try await api.placeOrder(customerID: customer).json["id"]?.stringValue)
            var g = Generator()
            var statuses: [Int: Int] = [:]
            for i in 0..<1200 {
                var gen = g
                let item: () -> JSONValue = {
                    var inner = Generator()
                    return inner.object([("sku", { .string("SKU-1") }), ("name", { .string("Mug") }), ("quantity", { .int(2) }), ("unit_price", { .string("9.99") })])
                }
                let body: JSONValue
                let path: String
                let method: String
                switch i % 5 {
                case 0:
                    (method, path) = ("POST", "/orders")
                    body = gen.object([
                        ("customer_id", { .string(customer) }), ("currency", { "EUR" }),
                        ("items", { .array((0..<Int.random(in: 0...3)).map { _ in item() }) }),
                        ("shipping_address", { ["line1": "Main 1", "city": "Berlin", "postal_code": "1", "country": "DE"] }),
                        ("note", { "hi" }),
                    ])
                case 1:
                    (method, path) = ("POST", "/customers")
                    body = gen.object([("name", { "A" }), ("email", { .string(TestEnvironment.uniqueName("f") + "@example.com") }), ("country", { "DE" })])
                case 2:
                    (method, path) = ("PATCH", "/customers/\(customer)")
                    body = gen.object([("name", { "B" }), ("country", { "FR" })])
                case 3:
                    (method, path) = ("POST", "/orders/\(order)/pay")
                    body = gen.object([("payment_reference", { "p" }), ("amount", { "19.98" })])
                default:
                    (method, path) = ("POST", "/orders/\(["x", "%00", "ord_%FF", order].randomElement()!)/cancel")
                    body = gen.object([("reason", { "r" })])
                }
                g = gen
                var text = body.serialized
                if i % 50 == 7 { text = String(text.dropLast(Int.random(in: 1...3))) }  // truncated JSON
                let reply = try await api.client.request(method, path, body: text)
                statuses[reply.status, default: 0] += 1
                #expect(reply.status < 500, "\(method) \(path) \(text.prefix(300)) → \(reply.status) \(reply.text)")
                if reply.status >= 400 { #expect(reply.header("content-type") == "application/problem+json") }
            }
            #expect(statuses.keys.contains { $0 < 300 })
            #expect(statuses[422, default: 0] > 100)
        }
    }
}
