import JSONSupport
import Testing

@Suite struct JSONTests {
    @Test func parsesAndKeepsNumbersLiterally() throws {
        let value = try JSONParser.parse(#"{"a":19.99,"b":[1,true,null,"x\u00e9\ud83d\ude00"],"c":{"d":-0.5e3}}"#)
        #expect(value["a"] == .number("19.99"))
        #expect(value["b"]?[3]?.stringValue == "xé😀")
        #expect(value["c"]?["d"] == .number("-0.5e3"))
        #expect(value.serialized == #"{"a":19.99,"b":[1,true,null,"xé😀"],"c":{"d":-0.5e3}}"#)
    }

    @Test(arguments: ["", "{", "{\"a\":1,}", "[1 2]", "{\"a\":1,\"a\":2}", "01", "\"\\x\"", "nul", "{\"a\":\"\u{01}\"}", "\"\\ud800\"", "1 2"])
    func rejectsInvalidDocuments(text: String) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(text) }
    }

    @Test func rejectsDeepNesting() {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(String(repeating: "[", count: 100) + String(repeating: "]", count: 100)) }
    }

    @Test func escapesControlCharactersAndQuotes() throws {
        var w = JSONWriter()
        w.string("a\"b\\c\nd\u{01}é")
        #expect(w.string == #""a\"b\\c\nd\u0001é""#)
        #expect(try JSONParser.parse(w.bytes).stringValue == "a\"b\\c\nd\u{01}é")
    }
}
