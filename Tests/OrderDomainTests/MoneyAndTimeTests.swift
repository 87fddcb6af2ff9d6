import OrderDomain
import Testing

@Suite struct MoneyTests {
    @Test(arguments: [("19.99", 1999), ("5", 500), ("0.5", 50), ("0.05", 5), ("1000000", 100_000_000), ("007.10", 710)])
    func parsesDecimalStrings(text: String, minorUnits: Int64) {
        #expect(Money(decimal: text)?.minorUnits == minorUnits)
    }

    @Test(arguments: ["", "1.999", "-1", "+1", "1e3", " 1", "1 ", "1.", ".5", "1,00", "NaN", "12345678901234", "１"])
    func rejectsEverythingElse(text: String) {
        #expect(Money(decimal: text) == nil)
    }

    @Test func arithmeticIsExact() {
        let price = Money(decimal: "19.99")!
        #expect((price * 3).description == "59.97")
        #expect((Money(decimal: "0.1")! + Money(decimal: "0.2")!).description == "0.30")
        #expect(Money(decimal: "50")!.description == "50.00")
    }
}

@Suite struct TimestampTests {
    @Test func formatsRFC3339InUTC() {
        #expect(Timestamp(millisecondsSinceEpoch: 0).rfc3339 == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp(millisecondsSinceEpoch: 1_764_174_000_123).rfc3339 == "2025-11-26T16:20:00.123Z")
        #expect(Timestamp(millisecondsSinceEpoch: 951_782_400_000).yearMonth == "2000-02")
    }

    @Test func parsesTimesDatesAndOffsets() {
        #expect(Timestamp(rfc3339: "2025-11-26T16:20:00.123Z")?.millisecondsSinceEpoch == 1_764_174_000_123)
        #expect(Timestamp(rfc3339: "2025-11-26T18:20:00+02:00")?.millisecondsSinceEpoch == 1_764_174_000_000)
        #expect(Timestamp(rfc3339: "2024-02-29")?.rfc3339 == "2024-02-29T00:00:00.000Z")
        for bad in ["2023-02-29", "2025-13-01", "2025-11-26T25:00:00Z", "2025-11-26T10:00:00", "yesterday", "2025-11-26T10:00:00.Z", ""] {
            #expect(Timestamp(rfc3339: bad) == nil, "\(bad)")
        }
    }
}

@Suite struct ConsistencyTokenTests {
    @Test func payloadRoundTripsAndIsStrict() {
        let token = ConsistencyToken(aggregateType: .order, aggregateID: "ord_01abc", version: 7, customerID: "cus_9")
        #expect(ConsistencyToken(payload: token.payload) == token)
        #expect(ConsistencyToken(payload: []) == nil)
        #expect(ConsistencyToken(payload: Array("not a token".utf8)) == nil)
        #expect(ConsistencyToken(payload: token.payload + Array("|x".utf8)) == nil)
        #expect(ConsistencyToken(payload: Array("v2|o|ord_1|0|cus_9".utf8)) == nil)
        #expect(ConsistencyToken(payload: Array("v2|x|ord_1|3|cus_9".utf8)) == nil)
        #expect(ConsistencyToken(payload: Array("v2|c|cus_9|3|".utf8)) == nil)
    }
}
