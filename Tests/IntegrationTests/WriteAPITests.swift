import JSONSupport
import OrderDomain
import LibPQClient
import Testing

/// Every write rule of the contract, over HTTP, against a real PostgreSQL.
@Suite struct WriteAPITests {
    @Test func customerLifecycleWithETagsAndConflicts() async throws {
        try await WriteAPIHarness.with() { api in
            let email = TestEnvironment.uniqueName("alice") + "@example.com"
            let created = try await api.client.post("/customers", json(["name": "Alice Smith", "email": .string(email), "country": "DE"]))
            #expect(created.status == 201)
            let id = try #require(created.json["id"]?.stringValue)
            #expect(created.header("location") == "/customers/\(id)")
            #expect(created.header("etag") == "\"1\"")
            #expect(created.header("consistency-token")?.isEmpty == false)
            #expect(created.json["version"]?.intValue == 1)
            #expect(created.json["created_at"]?.stringValue?.hasSuffix("Z") == true)

            let fetched = try await api.client.get("/customers/\(id)")
            #expect(fetched.status == 200)
            #expect(fetched.json["email"]?.stringValue == email)

            // E-mail uniqueness ignores case.
            expectProblem(try await api.client.post("/customers", json(["name": "Other", "email": .string(email.uppercased()), "country": "FR"])), 409)

            let renamed = try await api.client.patch("/customers/\(id)", json(["name": "Alice Jones"]), headers: [("If-Match", "\"1\"")])
            #expect(renamed.status == 200)
            #expect(renamed.json["version"]?.intValue == 2)
            #expect(renamed.json["name"]?.stringValue == "Alice Jones")
            #expect(renamed.header("etag") == "\"2\"")

            // A stale If-Match changes nothing.
            expectProblem(try await api.client.patch("/customers/\(id)", json(["name": "Nope"]), headers: [("If-Match", "\"1\"")]), 412)
            #expect(try await api.client.get("/customers/\(id)").json["name"]?.stringValue == "Alice Jones")

            let otherEmail = TestEnvironment.uniqueName("bob") + "@example.com"
            _ = try await api.createCustomer(name: "Bob", email: otherEmail)
            expectProblem(try await api.client.patch("/customers/\(id)", json(["email": .string(otherEmail)])), 409)
            let fields = expectProblem(try await api.client.patch("/customers/\(id)", json(["nickname": "x", "country": "Germany"])), 422)
            #expect(Set(fields) == ["nickname", "country"])
            expectProblem(try await api.client.get("/customers/cus_missing"), 404)
            expectProblem(try await api.client.patch("/customers/cus_missing", json(["name": "x"])), 404)

            // Events: one registration, one change per successful command, none for rejected ones.
            #expect(try await api.database.count("SELECT count(*) FROM outbox WHERE aggregate_id = $1", [id]) == 2)
        }
    }

    @Test func placeOrderComputesExactTotals() async throws {
        try await WriteAPIHarness.with() { api in
            let customer = try await api.createCustomer()
            let reply = try await api.placeOrder(customerID: customer, items: [("MUG-1", "Blue Mug", 3, "19.99"), ("TEE-2", "T-Shirt", 1, "0.1")])
            #expect(reply.status == 201)
            let id = try #require(reply.json["id"]?.stringValue)
            #expect(reply.header("location") == "/orders/\(id)")
            #expect(reply.json["total"]?.stringValue == "60.07")
            #expect(reply.json["items"]?[0]?["line_total"]?.stringValue == "59.97")
            #expect(reply.json["items"]?[1]?["unit_price"]?.stringValue == "0.10")
            #expect(reply.json["status"]?.stringValue == "pending")
            #expect(reply.json["paid_at"] == .null)
            let fetched = try await api.client.get("/orders/\(id)")
            #expect(fetched.status == 200)
            #expect(fetched.header("etag") == "\"1\"")
            #expect(fetched.json == reply.json)
            #expect(try await api.database.count("SELECT count(*) FROM outbox WHERE aggregate_id = $1 AND event_type = 'OrderPlaced'", [id]) == 1)
        }
    }

    @Test func invalidOrderListsEveryFieldAndWritesNothing() async throws {
        try await WriteAPIHarness.with() { api in
            let customer = try await api.createCustomer()
            let body = json([
                "customer_id": .string(customer), "currency": "euro",
                "items": [
                    ["sku": "bad sku!", "name": "", "quantity": 0, "unit_price": "0"],
                    ["sku": "A", "name": "ok", "quantity": 1001, "unit_price": "1000000.01"],
                    ["sku": "A", "name": .string(String(repeating: "x", count: 201)), "quantity": 1, "unit_price": .number("5.5")],
                    ["sku": "B", "name": "ok", "quantity": 1, "unit_price": "1.999", "colour": "red"],
                ],
                "shipping_address": ["line1": "x", "city": "Berlin", "postal_code": "1", "country": "Deutschland"],
                "coupon": "FREE",
            ])
            let fields = expectProblem(try await api.client.post("/orders", body), 422)
            #expect(Set(fields) == [
                "currency", "items[0].sku", "items[0].name", "items[0].quantity", "items[0].unit_price", "items[1].quantity",
                "items[1].unit_price", "items[2].sku", "items[2].name", "items[2].unit_price", "items[3].unit_price", "items[3].colour",
                "shipping_address.country", "coupon",
            ])
            #expect(expectProblem(try await api.client.post("/orders", orderBody(customerID: "cus_nobody")), 422) == ["customer_id"])
            #expect(Set(expectProblem(try await api.client.post("/orders", orderBody(customerID: "cus_nobody", currency: "XXY")), 422)) == ["customer_id", "currency"])
            let noItems = try await api.client.post("/orders", json(["customer_id": .string(customer), "currency": "EUR", "items": [],
                                                                      "shipping_address": ["line1": "x", "city": "y", "postal_code": "1", "country": "DE"]]))
            #expect(expectProblem(noItems, 422) == ["items"])
            let tooMany = (0..<101).map { ("S\($0)", "Item", 1, "1.00") }
            #expect(expectProblem(try await api.placeOrder(customerID: customer, items: tooMany), 422) == ["items"])
            // Boundaries that are allowed.
            let edge = try await api.placeOrder(customerID: customer, items: [("S-1_a", String(repeating: "n", count: 200), 1000, "1000000")])
            #expect(edge.status == 201)
            #expect(edge.json["total"]?.stringValue == "1000000000.00")
            #expect(try await api.database.count("SELECT count(*) FROM orders") == 1)
            #expect(try await api.database.count("SELECT count(*) FROM outbox WHERE aggregate_type = 'order'") == 1)
        }
    }

    @Test func stateMachineAllowsOnlyContractTransitions() async throws {
        try await WriteAPIHarness.with() { api in
            let customer = try await api.createCustomer()
            let id = try #require(try await api.placeOrder(customerID: customer).json["id"]?.stringValue)

            let ship = json(["carrier": "DHL", "tracking_number": "JD0001"])
            var conflict = try await api.client.post("/orders/\(id)/ship", ship)
            expectProblem(conflict, 409)
            #expect(conflict.json["current_status"]?.stringValue == "pending")
            expectProblem(try await api.client.post("/orders/\(id)/deliver", "{}"), 409)
            let wrongAmount = try await api.client.post("/orders/\(id)/pay", json(["payment_reference": "pay_1", "amount": "59.96"]))
            #expect(expectProblem(wrongAmount, 422) == ["amount"])

            let paid = try await api.client.post("/orders/\(id)/pay", json(["payment_reference": "pay_1", "amount": "59.97"]))
            #expect(paid.status == 200)
            #expect(paid.json["status"]?.stringValue == "paid")
            #expect(paid.json["version"]?.intValue == 2)
            #expect(paid.json["paid_at"]?.stringValue != nil)
            conflict = try await api.client.post("/orders/\(id)/pay", json(["payment_reference": "pay_2", "amount": "59.97"]))
            #expect(conflict.json["current_status"]?.stringValue == "paid")

            let shipped = try await api.client.post("/orders/\(id)/ship", ship)
            #expect(shipped.json["status"]?.stringValue == "shipped")
            #expect(shipped.json["tracking_number"]?.stringValue == "JD0001")
            conflict = try await api.client.post("/orders/\(id)/cancel", json(["reason": "too late"]))
            expectProblem(conflict, 409)
            #expect(conflict.json["current_status"]?.stringValue == "shipped")
            let delivered = try await api.client.request("POST", "/orders/\(id)/deliver", body: nil, contentType: nil)
            #expect(delivered.status == 200)
            #expect(delivered.json["status"]?.stringValue == "delivered")
            #expect(delivered.json["version"]?.intValue == 4)

            // Cancel from pending and from paid; nothing after cancelled.
            let second = try #require(try await api.placeOrder(customerID: customer).json["id"]?.stringValue)
            let cancelled = try await api.client.post("/orders/\(second)/cancel", json(["reason": "changed my mind"]))
            #expect(cancelled.json["status"]?.stringValue == "cancelled")
            #expect(cancelled.json["cancel_reason"]?.stringValue == "changed my mind")
            #expect(try await api.client.post("/orders/\(second)/pay", json(["payment_reference": "p", "amount": "59.97"])).json["current_status"]?.stringValue == "cancelled")
            let third = try #require(try await api.placeOrder(customerID: customer).json["id"]?.stringValue)
            _ = try await api.client.post("/orders/\(third)/pay", json(["payment_reference": "p", "amount": "59.97"]))
            #expect(try await api.client.post("/orders/\(third)/cancel", json(["reason": "refund"])).status == 200)

            expectProblem(try await api.client.post("/orders/ord_missing/pay", json(["payment_reference": "p", "amount": "1"])), 404)
            expectProblem(try await api.client.get("/orders/ord_missing"), 404)
            #expect(try await api.database.count("SELECT count(*) FROM outbox WHERE aggregate_id = $1", [id]) == 4)
            #expect(try await api.database.count("SELECT count(*) FROM outbox WHERE aggregate_id = $1", [second]) == 2)
        }
    }

    @Test func idempotencyKeysAreKeptAtLeastADay() async throws {
        try await WriteAPIHarness.with() { api in
            let customer = try await api.createCustomer()
            for key in ["fresh", "day-old", "three-days-old"] {
                #expect(try await api.placeOrder(customerID: customer, note: key).status == 201)
                _ = try await api.client.post("/orders", orderBody(customerID: customer, note: key), headers: [("Idempotency-Key", key)])
            }
            // Keys are stored as a digest of (subject, key): find them by the response they kept.
            let byNote = "response_body::jsonb->>'note'"
            try await api.database.pool.query("UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE \(byNote) = 'day-old'")
            try await api.database.pool.query("UPDATE idempotency_keys SET created_at = now() - interval '72 hours' WHERE \(byNote) = 'three-days-old'")
            #expect(try await api.service.pruneIdempotencyKeys() == 1)
            let kept = try await api.database.pool.query("SELECT \(byNote) FROM idempotency_keys ORDER BY 1").map { $0.string(0)! }
            #expect(kept == ["day-old", "fresh"])
        }
    }

    @Test func twentyConcurrentPaymentsSucceedExactlyOnce() async throws {
        try await WriteAPIHarness.with() { api in
            let customer = try await api.createCustomer()
            let id = try #require(try await api.placeOrder(customerID: customer).json["id"]?.stringValue)
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<20 {
                    group.addTask {
                        try await api.client.post("/orders/\(id)/pay", json(["payment_reference": .string("pay_\(i)"), "amount": "59.97"])).status
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 200 }.count == 1)
            #expect(statuses.filter { $0 == 409 }.count == 19)
            #expect(try await api.database.count("SELECT count(*) FROM outbox WHERE aggregate_id = $1 AND event_type = 'OrderPaid'", [id]) == 1)
        }
    }

    @Test func idempotencyKeyReplaysAndRejectsReuse() async throws {
        try await WriteAPIHarness.with() { api in
            let customer = try await api.createCustomer()
            let key = [("Idempotency-Key", TestEnvironment.uniqueName("key-"))]
            let first = try await api.client.post("/orders", orderBody(customerID: customer), headers: key)
            #expect(first.status == 201)
            let replay = try await api.client.post("/orders", orderBody(customerID: customer), headers: key)
            #expect(replay.status == 201)
            #expect(replay.body == first.body)
            #expect(replay.header("location") == first.header("location"))
            #expect(replay.header("consistency-token") == first.header("consistency-token"))
            #expect(try await api.database.count("SELECT count(*) FROM orders") == 1)
            #expect(try await api.database.count("SELECT count(*) FROM outbox WHERE aggregate_type = 'order'") == 1)
            // Same key, different body.
            let reused = try await api.client.post("/orders", orderBody(customerID: customer, note: "different"), headers: key)
            expectProblem(reused, 422)
            #expect(try await api.database.count("SELECT count(*) FROM orders") == 1)

            // Concurrent retries with one key: exactly one executes.
            let id = try #require(first.json["id"]?.stringValue)
            let payKey = [("Idempotency-Key", TestEnvironment.uniqueName("pay-"))]
            let replies = try await withThrowingTaskGroup(of: TestHTTP.Reply.self) { group in
                for _ in 0..<8 {
                    group.addTask { try await api.client.post("/orders/\(id)/pay", json(["payment_reference": "p1", "amount": "59.97"]), headers: payKey) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(replies.allSatisfy { $0.status == 200 && $0.json["version"]?.intValue == 2 })
            #expect(try await api.database.count("SELECT count(*) FROM outbox WHERE aggregate_id = $1 AND event_type = 'OrderPaid'", [id]) == 1)
        }
    }

    @Test func conventionsForMediaTypeSizeAndSyntax() async throws {
        try await WriteAPIHarness.with() { api in
            expectProblem(try await api.client.request("POST", "/customers", body: "name=x", contentType: "text/plain"), 415)
            expectProblem(try await api.client.request("POST", "/customers", body: "{}", contentType: nil), 415)
            expectProblem(try await api.client.request("POST", "/customers", body: "", contentType: nil), 400)  // no body at all
            expectProblem(try await api.client.post("/customers", "{\"name\": \"x\","), 400)
            expectProblem(try await api.client.post("/customers", "{\"name\":\"a\",\"name\":\"b\",\"email\":\"a@b.de\",\"country\":\"DE\"}"), 400)
            let big = "{\"name\":\"" + String(repeating: "x", count: 1 << 20) + "\"}"
            expectProblem(try await api.client.post("/customers", big), 413)
            expectProblem(try await api.client.post("/customers", "[1,2]"), 422)
            let validCustomer = json(["name": "A", "email": "a@example.com", "country": "DE"])
            expectProblem(try await api.client.post("/customers", validCustomer, headers: [("Idempotency-Key", String(repeating: "k", count: 256))]), 400)
            expectProblem(try await api.client.post("/customers", validCustomer, headers: [("If-Match", "banana")]), 400)
            expectProblem(try await api.client.get("/no/such/route"), 404)
            // Missing and mistyped fields are all listed.
            let fields = expectProblem(try await api.client.post("/customers", json(["name": 5, "email": "not-an-email"])), 422)
            #expect(Set(fields) == ["name", "email", "country"])
            #expect(try await api.database.count("SELECT count(*) FROM customers") == 0)
            #expect(try await api.database.count("SELECT count(*) FROM outbox") == 0)
        }
    }

    @Test func operationalEndpoints() async throws {
        try await WriteAPIHarness.with() { api in
            #expect(try await api.client.get("/health").status == 200)
            #expect(try await api.client.get("/ready").status == 200)
            _ = try await api.client.get("/customers/x")
            let metrics = try await api.client.get("/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.header("content-type")?.hasPrefix("text/plain") == true)
            #expect(metrics.text.contains(#"http_requests_total{route="/customers/{id}",method="GET",status="404"}"#))
            #expect(metrics.text.contains("http_request_duration_seconds_bucket"))
        }
    }
}
