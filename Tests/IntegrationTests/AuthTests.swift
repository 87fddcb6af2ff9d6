import ElasticsearchClient
import Foundation
import JWTKit
import JSONSupport
import Logging
import Security
import ServiceSupport
import Testing

/// The contract's "Authentication and authorization", over HTTP against real
/// PostgreSQL and osmem-server: every row of the role table, allowed and denied.
@Suite struct AuthTests {
    /// Two customers with an order each, and clients holding every role.
    struct World {
        let api: WriteAPIHarness
        let alice: String, bob: String
        let aliceOrder: String, bobOrder: String

        static func make(_ api: WriteAPIHarness) async throws -> World {
            let alice = try await api.createCustomer(name: "Alice Zyxwv")
            let bob = try await api.createCustomer(name: "Bob Qwvut")
            let aliceOrder = try #require(try await api.placeOrder(customerID: alice).json["id"]?.stringValue)
            let bobOrder = try #require(try await api.placeOrder(customerID: bob).json["id"]?.stringValue)
            return World(api: api, alice: alice, bob: bob, aliceOrder: aliceOrder, bobOrder: bobOrder)
        }

        func client(_ roles: [Role], customerID: String? = nil) async throws -> TestHTTP {
            api.client.with(bearer: try await TestEnvironment.token(roles, customerID: customerID))
        }
    }

    @Test func missingBadAndExpiredTokensAre401WithAChallenge() async throws {
        try await WriteAPIHarness.with() { api in
            let anonymous = api.client.with(bearer: nil)
            let none = try await anonymous.get("/orders/ord_x")
            expectProblem(none, 401)
            #expect(none.header("www-authenticate") == "Bearer")
            // Another scheme carries no bearer token: the same bare challenge (RFC 6750 §3.1).
            let basic = try await anonymous.get("/orders/ord_x", headers: [("Authorization", "Basic dXNlcjpwYXNz")])
            expectProblem(basic, 401)
            #expect(basic.header("www-authenticate") == "Bearer")
            let expired = try await AccessTokenMinter(secret: try TestEnvironment.authSecret)
                .mint(AccessTokenClaims(subject: "s", roles: [.staff], customerID: nil, expires: Date() - 3600))
            let otherKey = try await AccessTokenMinter(secret: String(repeating: "z", count: 40)).mint(subject: "s", roles: [.staff])
            for header in ["Bearer garbage", "Bearer", "Bearer \(expired)", "Bearer \(otherKey)", "bearer  a b"] {
                let reply = try await anonymous.get("/orders/ord_x", headers: [("Authorization", header)])
                expectProblem(reply, 401)
                #expect(reply.header("www-authenticate") == #"Bearer error="invalid_token""#, "\(header.prefix(12))")
                #expect(!reply.text.contains(expired) && !reply.text.contains(otherKey))
            }
            // The scheme is case-insensitive; nothing was written by the refused requests.
            let staff = try await TestEnvironment.token([.staff])
            #expect(try await anonymous.get("/customers/cus_x", headers: [("Authorization", "bEaReR \(staff)")]).status == 404)
            #expect(try await api.database.count("SELECT count(*) FROM customers") == 0)
            // Public endpoints need no token.
            #expect(try await anonymous.get("/health").status == 200)
            #expect(try await anonymous.get("/ready").status == 200)
            expectProblem(try await anonymous.get("/metrics"), 401)
        }
    }

    /// Every way a token can be wrong, over HTTP against a process that also
    /// checks `iss` and `aud`: each is a 401 with `error="invalid_token"`, and nothing is written.
    @Test func everyBadTokenIsRefusedOverHTTP() async throws {
        let secret = try TestEnvironment.authSecret
        try await WriteAPIHarness.with(auth: AuthConfiguration(jwtSecret: secret, issuer: "https://id.example", audience: "orders")) { api in
            let minter = try await AccessTokenMinter(secret: secret)
            func claims(sub: String? = "agent", roles: [Role] = [.staff], customerID: String? = nil, expires: Date = Date() + 600,
                        notBefore: Date? = nil, issuer: String? = "https://id.example", audience: String? = "orders") -> AccessTokenClaims {
                var claims = AccessTokenClaims(subject: sub ?? "", roles: roles, customerID: customerID, expires: expires, issuer: issuer, audience: audience)
                if sub == nil { claims.sub = nil }
                claims.nbf = notBefore.map { NotBeforeClaim(value: $0) }
                return claims
            }
            let good = try await minter.mint(claims())
            #expect(try await api.client.with(bearer: good).get("/customers/cus_none").status == 404)
            let none = JWTKeyCollection()
            await none.addUnsecuredNone()
            var noExp = claims()
            noExp.exp = nil
            let bad: [String: String] = [
                "expired": try await minter.mint(claims(expires: Date() - 3600)),
                "not yet valid": try await minter.mint(claims(notBefore: Date() + 3600)),
                "other key": try await AccessTokenMinter(secret: String(repeating: "q", count: 40)).mint(claims()),
                "alg none": try await none.sign(claims()),
                "wrong iss": try await minter.mint(claims(issuer: "https://evil.example")),
                "no iss": try await minter.mint(claims(issuer: nil)),
                "wrong aud": try await minter.mint(claims(audience: "billing")),
                "no sub": try await minter.mint(claims(sub: nil)),
                "no exp": try await minter.mint(noExp),
                "customer without customer_id": try await minter.mint(claims(roles: [.customer])),
                "garbage": "e30.e30.e30",
            ]
            for (what, token) in bad {
                let reply = try await api.client.with(bearer: token).post("/customers", json(["name": "X", "email": "x@example.com", "country": "DE"]))
                expectProblem(reply, 401)
                #expect(reply.header("www-authenticate") == #"Bearer error="invalid_token""#, "\(what)")
            }
            #expect(try await api.database.count("SELECT count(*) FROM customers") == 0)
        }
    }

    @Test func customerRows() async throws {
        try await WriteAPIHarness.with() { api in
            let w = try await World.make(api)
            let alice = try await w.client([.customer], customerID: w.alice)
            #expect(try await alice.get("/customers/\(w.alice)").status == 200)
            expectProblem(try await alice.get("/customers/\(w.bob)"), 404)
            #expect(try await alice.patch("/customers/\(w.alice)", json(["name": "Alice Renamed"])).status == 200)
            expectProblem(try await alice.patch("/customers/\(w.bob)", json(["name": "Hijacked"])), 404)
            expectProblem(try await alice.post("/customers", json(["name": "New", "email": "new@example.com", "country": "DE"])), 403)
            #expect(try await alice.post("/orders", orderBody(customerID: w.alice)).status == 201)
            expectProblem(try await alice.post("/orders", orderBody(customerID: w.bob)), 403)
            #expect(try await alice.get("/orders/\(w.aliceOrder)").status == 200)
            expectProblem(try await alice.get("/orders/\(w.bobOrder)"), 404)
            expectProblem(try await alice.post("/orders/\(w.bobOrder)/cancel", json(["reason": "mine now"])), 404)
            expectProblem(try await alice.post("/orders/\(w.aliceOrder)/pay", json(["payment_reference": "p", "amount": "59.97"])), 403)
            expectProblem(try await alice.post("/orders/\(w.aliceOrder)/ship", json(["carrier": "DHL", "tracking_number": "1"])), 403)
            expectProblem(try await alice.post("/orders/\(w.aliceOrder)/deliver", "{}"), 403)
            #expect(try await alice.post("/orders/\(w.aliceOrder)/cancel", json(["reason": "changed my mind"])).status == 200)
            expectProblem(try await alice.get("/metrics"), 403)
            // Nothing of Bob's changed.
            #expect(try await api.client.get("/customers/\(w.bob)").json["version"]?.intValue == 1)
            #expect(try await api.client.get("/orders/\(w.bobOrder)").json["status"]?.stringValue == "pending")
            #expect(try await api.database.count("SELECT count(*) FROM orders WHERE customer_id = $1", [w.bob]) == 1)
        }
    }

    @Test func paymentsFulfilmentMetricsAndStaffRows() async throws {
        try await WriteAPIHarness.with() { api in
            let w = try await World.make(api)
            let payments = try await w.client([.payments]), fulfilment = try await w.client([.fulfilment])
            let metrics = try await w.client([.metrics]), staff = try await w.client([.staff])
            for client in [payments, fulfilment, staff] { #expect(try await client.get("/orders/\(w.bobOrder)").status == 200) }
            for client in [payments, fulfilment, metrics] {
                expectProblem(try await client.get("/customers/\(w.alice)"), 403)
                expectProblem(try await client.patch("/customers/\(w.alice)", json(["name": "X"])), 403)
                expectProblem(try await client.post("/customers", json(["name": "N", "email": "n@example.com", "country": "DE"])), 403)
                expectProblem(try await client.post("/orders", orderBody(customerID: w.alice)), 403)
                expectProblem(try await client.post("/orders/\(w.aliceOrder)/cancel", json(["reason": "r"])), 403)
            }
            expectProblem(try await metrics.get("/orders/\(w.bobOrder)"), 403)
            expectProblem(try await fulfilment.post("/orders/\(w.bobOrder)/pay", json(["payment_reference": "p", "amount": "59.97"])), 403)
            #expect(try await payments.post("/orders/\(w.bobOrder)/pay", json(["payment_reference": "p", "amount": "59.97"])).status == 200)
            expectProblem(try await payments.post("/orders/\(w.bobOrder)/ship", json(["carrier": "DHL", "tracking_number": "1"])), 403)
            #expect(try await fulfilment.post("/orders/\(w.bobOrder)/ship", json(["carrier": "DHL", "tracking_number": "1"])).status == 200)
            expectProblem(try await payments.post("/orders/\(w.bobOrder)/deliver", "{}"), 403)
            #expect(try await fulfilment.post("/orders/\(w.bobOrder)/deliver", "{}").status == 200)
            #expect(try await metrics.get("/metrics").status == 200)
            #expect(try await staff.get("/metrics").status == 200)
            for client in [payments, fulfilment] { expectProblem(try await client.get("/metrics"), 403) }
            #expect(try await staff.post("/orders/\(w.aliceOrder)/cancel", json(["reason": "staff"])).status == 200)
            #expect(try await api.database.count("SELECT count(*) FROM orders") == 2)
        }
    }

    @Test func idempotencyKeysBelongToTheSubject() async throws {
        try await WriteAPIHarness.with() { api in
            let customer = try await api.createCustomer()
            let one = api.client.with(bearer: try await TestEnvironment.token([.staff], subject: "agent-1"))
            let two = api.client.with(bearer: try await TestEnvironment.token([.staff], subject: "agent-2"))
            let body = orderBody(customerID: customer)
            let first = try await one.post("/orders", body, headers: [("Idempotency-Key", "same-key")])
            let other = try await two.post("/orders", body, headers: [("Idempotency-Key", "same-key")])
            let replay = try await one.post("/orders", body, headers: [("Idempotency-Key", "same-key")])
            #expect(first.status == 201 && other.status == 201)
            #expect(other.json["id"] != first.json["id"])
            #expect(other.header("idempotent-replayed") == nil)
            #expect(replay.json["id"] == first.json["id"])
            #expect(replay.header("idempotent-replayed") == "true")
            #expect(try await api.database.count("SELECT count(*) FROM orders") == 2)
        }
    }

    /// A customer's searches cover its own orders only: hits, totals and every facet count.
    @Test func customerSearchIsLimitedToItsOwnOrders() async throws {
        try await IndexerHarness.withIndexerAndSearch { h, searchURL in
            let w = try await World.make(h.api)
            let aliceMore = try await h.api.placeOrders(3, customerID: w.alice)
            let bobMore = try await h.api.placeOrders(5, customerID: w.bob)
            #expect(await eventually { (try? await h.elasticsearch.count(h.alias)) == 10 })
            let base = TestHTTP(base: searchURL)
            let alice = base.with(bearer: try await TestEnvironment.token([.customer], customerID: w.alice))

            let all = try await alice.get("/search/orders?size=100")
            #expect(all.status == 200)
            #expect(all.json["total"]?.intValue == 4)
            let ids = Set((all.json["hits"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue })
            #expect(ids == Set([w.aliceOrder] + aliceMore))
            for facet in ["status", "country", "currency", "total_range", "created_month"] {
                #expect(all.json["facets"]?[facet]?.facetCounts.values.reduce(0, +) == 4, "\(facet)")
            }
            // Bob's name matches his orders only: none for Alice, not even in the counts.
            let byName = try await alice.get("/search/orders?q=Qwvut")
            #expect(byName.json["total"]?.intValue == 0)
            #expect(byName.json["facets"]?["status"]?.facetCounts.isEmpty == true)
            expectProblem(try await alice.get("/search/orders?customer_id=\(w.bob)"), 403)
            expectProblem(try await alice.get("/search/orders?customer_id=\(w.alice),\(w.bob)"), 403)
            #expect(try await alice.get("/search/orders?customer_id=\(w.alice)").json["total"]?.intValue == 4)
            #expect(try await alice.get("/search/orders/\(w.aliceOrder)").status == 200)
            expectProblem(try await alice.get("/search/orders/\(w.bobOrder)"), 404)
            expectProblem(try await alice.get("/search/orders/\(bobMore[0])"), 404)

            // Staff and fulfilment see everything; payments and metrics may not search.
            for roles: [Role] in [[.staff], [.fulfilment]] {
                let reply = try await base.with(bearer: try await TestEnvironment.token(roles)).get("/search/orders?q=Qwvut")
                #expect(reply.json["total"]?.intValue == 6)
            }
            for roles: [Role] in [[.payments], [.metrics]] {
                let other = base.with(bearer: try await TestEnvironment.token(roles))
                expectProblem(try await other.get("/search/orders"), 403)
                expectProblem(try await other.get("/search/orders/\(w.aliceOrder)"), 403)
            }
            expectProblem(try await base.get("/search/orders"), 401)
            #expect(try await base.get("/health").status == 200)

            // A customer's consistency token waits only for its own writes: another customer's is answered at once.
            let bobWrite = try await h.api.client.patch("/customers/\(w.bob)", json(["name": "Bob Renamed"]))
            let bobToken = try #require(bobWrite.header("consistency-token"))
            let started = ContinuousClock.now
            let notWaited = try await alice.get("/search/orders", headers: [("Consistency-Token", bobToken), ("Consistency-Wait", "10000")])
            #expect(notWaited.status == 200 && notWaited.header("read-model-caught-up") == "false")
            #expect(ContinuousClock.now - started < .seconds(5))
            let aliceWrite = try await h.api.client.patch("/customers/\(w.alice)", json(["name": "Alice Renamed"]))
            let aliceToken = try #require(aliceWrite.header("consistency-token"))
            let waited = try await alice.get("/search/orders", headers: [("Consistency-Token", aliceToken), ("Consistency-Wait", "10000")])
            #expect(waited.header("read-model-caught-up") == "true")
        }
    }

    /// Tokens and `Authorization` headers never reach a log line, at any level.
    @Test func noTokenInAnyLogLine() async throws {
        let lines = Locked<[String]>([])
        var logger = Logger(label: "auth-log-scan") { _ in CapturingLogHandler(lines: lines) }
        logger.logLevel = .trace
        try await WriteAPIHarness.with(logger: logger) { api in
            let valid = try await TestEnvironment.token([.staff], subject: "log-scan")
            let expired = try await AccessTokenMinter(secret: try TestEnvironment.authSecret)
                .mint(AccessTokenClaims(subject: "s", roles: [.staff], customerID: nil, expires: Date() - 3600))
            let forged = try await AccessTokenMinter(secret: String(repeating: "f", count: 40)).mint(subject: "s", roles: [.staff])
            for token in [valid, expired, forged, "not-a-jwt-but-secret-looking-0123456789"] {
                let client = api.client.with(bearer: token)
                _ = try await client.get("/orders/ord_missing")
                _ = try await client.post("/customers", "{not json")
                _ = try await client.post("/customers", json(["name": "Log Scan", "email": "scan@example.com", "country": "DE"]))
                _ = try await client.get("/metrics")
            }
            let logged = lines.value.joined(separator: "\n")
            #expect(!lines.value.isEmpty)  // the scan saw the services' log lines
            for token in [valid, expired, forged, "not-a-jwt-but-secret-looking-0123456789", try TestEnvironment.authSecret] {
                #expect(!logged.contains(token))
                // Not even the signature part alone.
                if let signature = token.split(separator: ".").last, signature.count > 20 { #expect(!logged.contains(signature)) }
            }
            #expect(!logged.lowercased().contains("bearer "))
        }
    }
}

/// Collects every log line (message and metadata) for scanning.
struct CapturingLogHandler: LogHandler {
    let lines: Locked<[String]>
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        lines.update { $0.append("\(event.level) \(event.message) \(all) \(event.error.map { "\($0)" } ?? "")") }
    }
}
