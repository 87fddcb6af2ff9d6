import Foundation
import JSONSupport
import OrderDomain
import RequestParsing
import Testing
import TokenSigning

/// Hostile input costs at most a small constant times its size, with no server.
@Suite struct BoundedParsingTests {
    static func object(_ text: String) throws -> JSONObject {
        guard case .object(let object) = try JSONParser.parse(text) else { throw Unexpected() }
        return object
    }

    struct Unexpected: Error {}

    /// 349k empty items in a 1 MiB body: `items` is counted first, no item is examined.
    @Test func tooManyItemsIsOneErrorWithoutLookingAtTheItems() throws {
        let items = Array(repeating: "{}", count: 349_000).joined(separator: ",")
        let body = try Self.object(#"{"customer_id":"cus_1","currency":"EUR","items":[\#(items)],"shipping_address":{"line1":"a","city":"b","postal_code":"1","country":"DE"}}"#)
        let (_, errors) = CommandBodies.placeOrder(body)
        #expect(errors == [FieldError(field: "items", message: "must contain between 1 and 100 items")])
    }

    @Test func listedErrorsStopAtTheLimit() throws {
        // 100 items with four bad fields each and thousands of unknown keys.
        let item = #"{"sku":1,"name":2,"quantity":"x","unit_price":3}"#
        let unknown = (0..<5000).map { #""k\#($0)":1"# }.joined(separator: ",")
        let body = try Self.object(#"{\#(unknown),"items":[\#(Array(repeating: item, count: 100).joined(separator: ","))]}"#)
        let (_, errors) = CommandBodies.placeOrder(body)
        #expect(errors.count == FieldError.maximumListed)
        let (_, customerErrors) = CommandBodies.newCustomer(body)
        #expect(customerErrors.count == FieldError.maximumListed)
    }

    @Test func everyFieldErrorIsStillListedBelowTheLimit() throws {
        let body = try Self.object(#"{"customer_id":"","currency":"eur","items":[{"sku":"A","name":"","quantity":0,"unit_price":"0"}],"shipping_address":{}}"#)
        let fields = Set(CommandBodies.placeOrder(body).1.map(\.field))
        #expect(fields.isSuperset(of: ["customer_id", "currency", "items[0].name", "items[0].quantity", "items[0].unit_price",
                                       "shipping_address.line1", "shipping_address.city"]))
    }

    /// 20k distinct values: refused at the 101st while splitting, never compared pairwise.
    @Test func filterValuesAreCountedWhileSplitting() throws {
        let many = (0..<20_000).map { "cus_\($0)" }.joined(separator: ",")
        #expect(throws: SearchParameters.Invalid(parameter: "customer_id", message: "accepts at most 100 values")) {
            try SearchParameters(query: "customer_id=\(many)")
        }
        let repeated = (0..<20_000).map { _ in "customer_id=cus_1" }.joined(separator: "&")
        #expect(try SearchParameters(query: repeated).customerIDs == ["cus_1"])  // de-duplicated
        let hundred = (0..<100).map { "cus_\($0)" }.joined(separator: ",")
        #expect(try SearchParameters(query: "customer_id=\(hundred),cus_0,cus_1").customerIDs.count == 100)
    }

    @Test func cursorsAreSignedAndCarryTheirQuery() throws {
        let signer = try TokenSigner(key: String(repeating: "c", count: 32))
        let cursor = Cursor(query: "q=a%2Bb&size=3", scope: "cus_1", searchAfter: [.number("1700000000000"), .string("ord_1")])
        let text = cursor.encoded(with: signer)
        let decoded = try #require(Cursor(encoded: text, signer: signer))
        #expect(decoded.query == cursor.query && decoded.scope == "cus_1" && decoded.searchAfter == cursor.searchAfter)
        #expect(decoded.fits(sortFields: ["created_at", "order_id"]))
        #expect(!decoded.fits(sortFields: ["_score", "created_at", "order_id"]))
        #expect(!decoded.fits(sortFields: ["order_id", "created_at"]))  // values of the wrong type
        let other = try TokenSigner(key: String(repeating: "d", count: 32))
        #expect(Cursor(encoded: text, signer: other) == nil)
    }

    /// What a cursor carries parses back to the same query, whatever the spelling of the request.
    @Test func theCanonicalQueryParsesBackToTheSameQuery() throws {
        let spelled = "status=shipped&status=paid,%20pending&q=caf%C3%A9+%2B+bar%26x%3Dy&total_min=5.5&created_from=2026-11-01&size=7"
        let parameters = try SearchParameters(query: spelled)
        let again = try SearchParameters(query: parameters.canonicalQuery)
        #expect(again.canonicalQuery == parameters.canonicalQuery)
        #expect(again.q == "café + bar&x=y" && again.statuses.sorted() == ["paid", "pending", "shipped"] && again.size == 7)
        #expect(again.totalMin == parameters.totalMin && again.createdFrom == parameters.createdFrom)
        let reordered = try SearchParameters(query: "size=7&created_from=2026-11-01T00:00:00Z&total_min=5.50&q=caf%C3%A9%20%2B%20bar%26x%3Dy&status=pending,paid,shipped")
        #expect(reordered.canonicalQuery == parameters.canonicalQuery)
        #expect(!(try SearchParameters(query: "cursor=abc")).hasParametersBesideCursor)
        // A time that leaves the four-digit years in UTC could not travel in a cursor: refused by name.
        #expect(throws: SearchParameters.Invalid(parameter: "created_from", message: "must be an RFC 3339 time or YYYY-MM-DD, in the years 0000 to 9999 (UTC)")) {
            try SearchParameters(query: "created_from=9999-12-31T23:59:59-00:01")
        }
        #expect(try SearchParameters(query: "cursor=abc&size=20").hasParametersBesideCursor)
    }
}

/// Replays the corpus `scripts/fuzz` found (Tests/RequestParsingTests/Corpus): every input stays harmless.
@Suite struct FuzzCorpusTests {
    @Test(arguments: ["json", "order-body", "search-parameters", "tokens"])
    func corpusReplays(target: String) throws {
        let directory = try #require(Bundle.module.url(forResource: "Corpus/\(target)", withExtension: nil))
        let files = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
        #expect(!files.isEmpty)
        let run = try #require(FuzzTargets.all[target])
        for file in files { run(Array(try Data(contentsOf: file))) }
    }
}
