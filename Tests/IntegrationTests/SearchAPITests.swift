import ElasticsearchClient
import Foundation
import JSONSupport
import OrderDomain
import OrderSearchAPI
import Security
import TokenSigning
import ServiceSupport
import Testing
import ServiceTesting

/// The search contract against the real osmem-server with a seeded data set.
@Suite struct SearchAPITests {
    typealias F = SearchFixture

    func fixture() async throws -> SearchFixture { try await SearchFixture.shared.value }

    @Test func totalsAndFacetsWithoutFilters() async throws {
        let f = try await fixture()
        let reply = try await f.search.get("/search/orders?size=5")
        #expect(reply.status == 200)
        let body = reply.json
        #expect(body["total"]?.intValue == 120)
        #expect(body["total_exact"] == true)
        #expect(body["hits"]?.arrayValue?.count == 5)
        #expect(body["facets"]?["status"]?.facetCounts == F.counts(F.seeds) { $0.status })
        #expect(body["facets"]?["currency"]?.facetCounts == F.counts(F.seeds) { $0.currency })
        #expect(body["facets"]?["country"]?.facetCounts == F.counts(F.seeds) { $0.country })
        #expect(body["facets"]?["total_range"]?.facetCounts == F.counts(F.seeds) { F.bucket($0.totalCents) })
        #expect(body["facets"]?["created_month"]?.facetCounts == F.counts(F.seeds) { $0.month })
        // Fixed bucket order, "to": null on the last, months ascending.
        let ranges = body["facets"]!["total_range"]!.arrayValue!.map { $0["value"]!.stringValue! }
        #expect(ranges == ["0-50", "50-100", "100-250", "250-1000", "1000-"].filter { F.counts(F.seeds) { F.bucket($0.totalCents) }[$0] != nil })
        #expect(body["facets"]!["total_range"]!.arrayValue!.last!["to"] == .null)
        let months = body["facets"]!["created_month"]!.arrayValue!.map { $0["value"]!.stringValue! }
        #expect(months == months.sorted())
        // Default sort without q: newest first.
        let first = body["hits"]![0]!
        #expect(first["id"]?.stringValue == F.seeds.max { $0.createdAt < $1.createdAt }!.id)
        #expect(first["customer"]?["name"]?.stringValue != nil)
        #expect(first["item_count"]?.intValue == first["items"]?.arrayValue?.count)
    }

    @Test func multiSelectFacetsIgnoreOnlyTheirOwnFilter() async throws {
        let f = try await fixture()
        let reply = try await f.search.get("/search/orders?status=paid&status=shipped&currency=EUR,USD&country=DE&total_min=50&created_from=2026-08-01")
        #expect(reply.status == 200)
        let statusSet: Set = ["paid", "shipped"], currencySet: Set = ["EUR", "USD"]
        let start = Timestamp(rfc3339: "2026-08-01")!
        func passes(_ s: F.Seed, except: String?) -> Bool {
            (except == "status" || statusSet.contains(s.status)) && (except == "currency" || currencySet.contains(s.currency))
                && (except == "country" || s.country == "DE") && (except == "total" || s.totalCents >= 5000)
                && (except == "created" || s.createdAt >= start)
        }
        let body = reply.json
        #expect(body["total"]?.intValue == F.seeds.filter { passes($0, except: nil) }.count)
        #expect(body["facets"]?["status"]?.facetCounts == F.counts(F.seeds.filter { passes($0, except: "status") }) { $0.status })
        #expect(body["facets"]?["currency"]?.facetCounts == F.counts(F.seeds.filter { passes($0, except: "currency") }) { $0.currency })
        #expect(body["facets"]?["country"]?.facetCounts == F.counts(F.seeds.filter { passes($0, except: "country") }) { $0.country })
        #expect(body["facets"]?["total_range"]?.facetCounts == F.counts(F.seeds.filter { passes($0, except: "total") }) { F.bucket($0.totalCents) })
        #expect(body["facets"]?["created_month"]?.facetCounts == F.counts(F.seeds.filter { passes($0, except: "created") }) { $0.month })
        for hit in body["hits"]?.arrayValue ?? [] {
            #expect(statusSet.contains(hit["status"]!.stringValue!))
            #expect(hit["shipping_country"]?.stringValue == "DE")
        }
    }

    @Test func customerSkuAndDateFiltersApplyToEverything() async throws {
        let f = try await fixture()
        let reply = try await f.search.get("/search/orders?customer_id=cus_seed_b&sku=SOCK-3&created_to=2026-10-01T00:00:00Z&total_max=1000")
        let expected = F.seeds.filter {
            $0.customer == 1 && $0.items.contains { $0.sku == "SOCK-3" } && $0.createdAt < Timestamp(rfc3339: "2026-10-01")! && $0.totalCents <= 100_000
        }
        #expect(reply.json["total"]?.intValue == expected.count)
        #expect(expected.count > 0)
    }

    @Test(arguments: [("-total", true), ("total", false)])
    func sortsByTotalWithUniqueTiebreaker(sort: String, descending: Bool) async throws {
        let f = try await fixture()
        let hits = try await f.search.get("/search/orders?sort=\(sort)&size=100").json["hits"]!.arrayValue!
        let keys = hits.map { (Double($0["total"]!.stringValue!)!, $0["id"]!.stringValue!) }
        for (a, b) in zip(keys, keys.dropFirst()) {
            #expect(descending ? (a.0 > b.0 || (a.0 == b.0 && a.1 < b.1)) : (a.0 < b.0 || (a.0 == b.0 && a.1 < b.1)))
        }
    }

    @Test func sortsByCreationTime() async throws {
        let f = try await fixture()
        let ascending = try await f.search.get("/search/orders?sort=created_at&size=100").json["hits"]!.arrayValue!.map { $0["created_at"]!.stringValue! }
        #expect(ascending == ascending.sorted())
        #expect(ascending.first == F.seeds.min { $0.createdAt < $1.createdAt }!.createdAt.rfc3339)
        let descending = try await f.search.get("/search/orders?sort=-created_at&size=100").json["hits"]!.arrayValue!.map { $0["created_at"]!.stringValue! }
        #expect(descending == descending.sorted(by: >))
    }

    @Test(arguments: ["-created_at", "total", "relevance"])
    func cursorVisitsEveryMatchExactlyOnce(sort: String) async throws {
        let f = try await fixture()
        var seen: [String] = []
        var cursor: String?
        var pages = 0
        repeat {
            // The contract's form: the next page asks with the cursor alone, which carries size, sort and filter.
            let path = cursor.map { "/search/orders?cursor=\($0)" } ?? "/search/orders?size=7&sort=\(sort)&status=paid,shipped,delivered,pending,cancelled"
            let body = try await f.search.get(path).json
            let hits = body["hits"]!.arrayValue!
            seen += hits.map { $0["id"]!.stringValue! }
            cursor = body["next_cursor"]?.stringValue
            pages += 1
            if cursor == nil { #expect(!hits.isEmpty) }
        } while cursor != nil && pages < 100
        #expect(seen.count == 120)
        #expect(Set(seen).count == 120)
        #expect(pages == 18)  // 17 full pages of 7 and a last page of 1
    }

    @Test func cursorFromAnotherQueryOrCorruptedIsRejected() async throws {
        let f = try await fixture()
        let first = try await f.search.get("/search/orders?size=3&status=paid").json
        let cursor = try #require(first["next_cursor"]?.stringValue)
        #expect(try await f.search.get("/search/orders?size=3&status=paid&cursor=\(cursor)").status == 200)
        #expect(try await f.search.get("/search/orders?status=paid&cursor=\(cursor)&size=3").status == 200)  // order of parameters does not matter
        let alone = try await f.search.get("/search/orders?cursor=\(cursor)")
        let resent = try await f.search.get("/search/orders?size=3&status=paid&cursor=\(cursor)")
        let ids = { (reply: JSONValue) in reply["hits"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? [] }
        #expect(alone.status == 200 && ids(alone.json).count == 3)
        #expect(ids(alone.json) == ids(resent.json))  // the cursor alone is the same query
        #expect(Set(ids(alone.json)).isDisjoint(with: ids(first)))  // it continues after the first page
        #expect(alone.json["hits"]?.arrayValue?.allSatisfy { $0["status"]?.stringValue == "paid" } == true)  // and keeps its filter
        #expect(expectProblem(try await f.search.get("/search/orders?status=paid&cursor=\(cursor)"), 400) == ["cursor"])  // part of it is another query
        #expect(expectProblem(try await f.search.get("/search/orders?size=3&status=shipped&cursor=\(cursor)"), 400) == ["cursor"])
        #expect(expectProblem(try await f.search.get("/search/orders?size=4&status=paid&cursor=\(cursor)"), 400) == ["cursor"])
        var corrupted = Array(cursor)
        corrupted[corrupted.count / 2] = corrupted[corrupted.count / 2] == "A" ? "B" : "A"
        #expect(expectProblem(try await f.search.get("/search/orders?size=3&status=paid&cursor=\(String(corrupted))"), 400) == ["cursor"])
        #expect(expectProblem(try await f.search.get("/search/orders?cursor=%00%01"), 400) == ["cursor"])
    }

    @Test func fullTextIsTypoTolerantPrefixMatchedAndHighlighted() async throws {
        let f = try await fixture()
        let shoes = F.seeds.filter { $0.items.contains { $0.name.contains("Shoes") } }.count
        #expect(try await f.search.get("/search/orders?q=shoes").json["total"]?.intValue == shoes)
        #expect(try await f.search.get("/search/orders?q=shoez").json["total"]?.intValue == shoes)  // typo
        #expect(try await f.search.get("/search/orders?q=running%20sho").json["total"]?.intValue == shoes)  // last word as prefix
        let alice = try await f.search.get("/search/orders?q=alic&size=1").json
        #expect(alice["total"]?.intValue == F.seeds.filter { $0.customer == 0 }.count)
        #expect(alice["hits"]?[0]?["highlight"]?["customer.name"]?[0]?.stringValue == "<mark>Alice</mark> Smith")
        #expect(try await f.search.get("/search/orders?q=zoe").json["total"]?.intValue == F.seeds.filter { $0.customer == 2 }.count)  // folding
        let byID = try await f.search.get("/search/orders?q=ord_seed_042").json
        #expect(byID["hits"]?[0]?["id"]?.stringValue == "ord_seed_042")
        #expect(try await f.search.get("/search/orders?q=SOCK-3").json["total"]?.intValue == F.seeds.filter { $0.items.contains { $0.sku == "SOCK-3" } }.count)
        #expect(try await f.search.get("/search/orders?q=gift").json["total"]?.intValue == F.seeds.filter { $0.id.hasSuffix("7") }.count)
        #expect(try await f.search.get("/search/orders?q=paris").json["total"]?.intValue == F.seeds.filter { $0.city == "Paris" }.count)
    }

    @Test func badParametersAreNamed() async throws {
        let f = try await fixture()
        let cases = ["size=0": "size", "size=101": "size", "size=abc": "size", "facet_size=0": "facet_size", "sort=price": "sort",
                     "status=lost": "status", "currency=eur": "currency", "country=DEU": "country", "total_min=-1": "total_min",
                     "total_max=1.234": "total_max", "total_min=10&total_max=5": "total_min", "created_from=yesterday": "created_from",
                     "created_to=2026-02-30": "created_to", "colour=red": "colour", "size=1&size=2": "size", "q=%ZZ": "q",
                     "q=" + String(repeating: "a", count: 513): "q"]
        for (query, parameter) in cases {
            let reply = try await f.search.get("/search/orders?\(query)")
            #expect(expectProblem(reply, 400) == [parameter], "\(query)")
        }
        #expect(try await f.search.get("/search/orders?q=" + String(repeating: "é", count: 512).addingPercentEncoding(withAllowedCharacters: .alphanumerics)!).status == 200)
    }

    @Test func randomTextNeverYieldsA5xx() async throws {
        let f = try await fixture()
        var rng = SystemRandomNumberGenerator()
        let alphabet: [Character] = Array("abcXYZ019 \"'\\()[]{}~*+-|&!^:/?<>=%#@$;,.") + ["é", "ß", "日", "本", "🙂", "\u{0}", "\u{7f}", "\u{202e}", "\t", "\n"]
        let parameterValues = ["size=1", "size=100", "sort=relevance", "sort=-total", "facet_size=100", "status=paid", "currency=EUR", "total_min=0"]
        var statuses: [Int: Int] = [:]
        for i in 0..<1500 {
            let length = Int.random(in: 0...(i % 10 == 0 ? 600 : 40), using: &rng)
            let q = String((0..<length).map { _ in alphabet.randomElement(using: &rng)! })
            let encoded = q.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let reply = try await f.search.get("/search/orders?q=\(encoded)&\(parameterValues.randomElement(using: &rng)!)")
            statuses[reply.status, default: 0] += 1
            #expect(reply.status == (q.unicodeScalars.count > 512 ? 400 : 200), "q=\(q.debugDescription)")
        }
        #expect(statuses[200, default: 0] > 1000)
    }

    @Test func randomParameterValuesAreAnsweredOr400() async throws {
        let f = try await fixture()
        var rng = SystemRandomNumberGenerator()
        let names = ["status", "currency", "country", "customer_id", "sku", "total_min", "total_max", "created_from", "created_to", "sort",
                     "size", "facet_size", "cursor", "q"]
        let values = ["", "0", "-1", "101", "1e3", "paid", "PAID", "EUR", "eu", "DE,FR", ",,,", "2026-13-01", "2026-02-28T25:00:00Z",
                      "2026-01-01T00:00:00+14:00", "0001-01-01", "9999-12-31", "99999999999999", "12.345", "%00", "%ZZ", "-total",
                      "relevance", "v1.x.y", String(repeating: "z", count: 200), "🙂", "a%26b%3Dc"]
        for _ in 0..<400 {
            let query = (0..<Int.random(in: 1...4, using: &rng)).map { _ in
                "\(names.randomElement(using: &rng)!)=\(values.randomElement(using: &rng)!)"
            }.joined(separator: "&")
            let reply = try await f.search.get("/search/orders?\(query)")
            #expect(reply.status == 200 || reply.status == 400, "\(query) → \(reply.status) \(reply.text)")
        }
    }

    @Test func documentEndpoint() async throws {
        let f = try await fixture()
        let reply = try await f.search.get("/search/orders/ord_seed_001")
        #expect(reply.status == 200)
        #expect(reply.json["id"]?.stringValue == "ord_seed_001")
        #expect(reply.json["total"]?.stringValue == String(format: "%.2f", Double(F.seeds[1].totalCents) / 100))
        expectProblem(try await f.search.get("/search/orders/ord_nope"), 404)
    }

    /// Its own database, index and servers: it writes, and the shared fixture must stay at exactly 120 orders.
    @Test func readYourWritesWithConsistencyToken() async throws {
        try await IndexerHarness.withIndexerAndSearch { h, searchURL in
            let search = TestHTTP(base: searchURL, bearer: try await TestEnvironment.token([.staff]))
            let api = h.api
            let customer = try await api.createCustomer(name: "Token Tester")
            let placed = try await api.placeOrder(customerID: customer, items: [("TOK-1", "Token Lamp", 1, "5.00")])
            let token = try #require(placed.header("consistency-token"))
            let id = try #require(placed.json["id"]?.stringValue)
            let reply = try await search.get("/search/orders?q=\(id)", headers: [("Consistency-Token", token), ("Consistency-Wait", "10000")])
            #expect(reply.status == 200)
            #expect(reply.header("read-model-caught-up") == "true")
            #expect(reply.json["hits"]?[0]?["id"]?.stringValue == id)
            let renamed = try await api.client.patch("/customers/\(customer)", json(["name": "Token Renamed"]))
            let after = try await search.get("/search/orders/\(id)", headers: [("Consistency-Token", renamed.header("consistency-token")!)])
            #expect(after.header("read-model-caught-up") == "true")
            #expect(after.json["customer"]?["name"]?.stringValue == "Token Renamed")
            // Not yet applied (a version that does not exist): false after the wait.
            let future = try ConsistencyTokenText.order(id, version: 99, customerID: customer)
            let waited = try await search.get("/search/orders", headers: [("Consistency-Token", future), ("Consistency-Wait", "50")])
            #expect(waited.status == 200)
            #expect(waited.header("read-model-caught-up") == "false")
            #expect(expectProblem(try await search.get("/search/orders", headers: [("Consistency-Token", "garbage")]), 400) == ["Consistency-Token"])
            #expect(expectProblem(try await search.get("/search/orders", headers: [("Consistency-Token", token), ("Consistency-Wait", "10001")]), 400) == ["Consistency-Wait"])
            #expect(expectProblem(try await search.get("/search/orders", headers: [("Consistency-Token", token), ("Consistency-Wait", "-1")]), 400) == ["Consistency-Wait"])
        }
    }

    @Test func readinessFollowsElasticsearch() async throws {
        let f = try await fixture()
        #expect(try await f.search.get("/ready").status == 200)
        try await expectNotReady(clusterURL: "http://127.0.0.1:1", alias: "orders")
        // The cluster answers, but nothing is behind the alias (a cluster that came back empty):
        // every search would get 503, so the API is not ready either.
        try await expectNotReady(clusterURL: try TestEnvironment.elasticsearchURL, alias: "orders_never_created")
    }

    /// A search API on `clusterURL` and `alias` says it is not ready because of Elasticsearch,
    /// answers searches with 503 (never showing the Elasticsearch request), and is healthy.
    private func expectNotReady(clusterURL: String, alias: String) async throws {
        let client = ElasticsearchClient(configuration: .init(baseURL: clusterURL))
        try await withScoped({ try await startSearchAPI(client: client, alias: alias) },
                             stop: { $0.1.cancel(); await client.shutdown() }) { server in
            let api = TestHTTP(base: "http://127.0.0.1:\(server.0)", bearer: try await TestEnvironment.token([.staff]))
            let ready = try await api.get("/ready")
            expectProblem(ready, 503)
            #expect(ready.json["dependency"]?.stringValue == "elasticsearch")
            let search = try await api.get("/search/orders?q=x")
            expectProblem(search, 503)
            #expect(!search.text.contains("query"))
            #expect(try await api.get("/health").status == 200)
        }
    }
}


enum ConsistencyTokenText {
    /// A token as the write API signs it (with the shared test `SIGNING_KEY`).
    static func order(_ id: String, version: Int, customerID: String) throws -> String {
        try TestEnvironment.signer.sign(ConsistencyToken(aggregateType: .order, aggregateID: id, version: version, customerID: customerID).payload,
                                        for: .consistency)
    }
}
