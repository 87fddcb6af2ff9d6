import Security
@testable import TokenSigning
import Testing

@Suite struct TokenSignerTests {
    let signer = try! TokenSigner(key: String(repeating: "k", count: 40))
    let other = try! TokenSigner(key: String(repeating: "o", count: 40))

    @Test func signedPayloadRoundTrips() {
        let token = signer.sign(Array("v2|o|ord_1|3|cus_1".utf8), for: .consistency)
        #expect(signer.verify(token, for: .consistency) == Array("v2|o|ord_1|3|cus_1".utf8))
    }

    @Test func alteredOtherKeyOrOtherPurposeIsRefused() {
        let token = signer.sign(Array("payload".utf8), for: .consistency)
        #expect(other.verify(token, for: .consistency) == nil)
        #expect(signer.verify(token, for: .cursor) == nil)
        var bytes = Array(token)
        bytes[2] = bytes[2] == "A" ? "B" : "A"
        #expect(signer.verify(String(bytes), for: .consistency) == nil)
        for garbage in ["", ".", "abc", "a.b.c", token + "x", String(repeating: "A", count: 5000)] {
            #expect(signer.verify(garbage, for: .consistency) == nil)
        }
    }

    @Test func shortKeysAreRefused() {
        #expect(throws: TokenSigner.InvalidKey.self) { try TokenSigner(key: "short") }
        #expect(throws: TokenSigner.InvalidKey.self) { try TokenSigner(environment: [:]) }
    }

    @Test func digestIsLengthPrefixed() {
        #expect(Digest.sha256Hex(["ab", "c"]) != Digest.sha256Hex(["a", "bc"]))
        #expect(Digest.sha256Hex(["x"]).count == 64)
    }
}

@Suite struct AccessTests {
    let customer = Principal(subject: "c", roles: [.customer], customerID: "cus_1")

    @Test func roleTableDecisions() {
        #expect(Access.decide(Principal(subject: "s", roles: [.staff], customerID: nil), anyResource: [.staff], customerOnOwn: true) == .allowed)
        #expect(Access.decide(customer, anyResource: [.staff], customerOnOwn: true) == .ownedBy(customerID: "cus_1"))
        #expect(Access.decide(customer, anyResource: [.staff], customerOnOwn: false) == .forbidden)
        #expect(Access.decide(Principal(subject: "m", roles: [.metrics], customerID: nil), anyResource: [.staff], customerOnOwn: true) == .forbidden)
        #expect(Access.ownedBy(customerID: "cus_1").permits(ownerCustomerID: "cus_1"))
        #expect(!Access.ownedBy(customerID: "cus_1").permits(ownerCustomerID: "cus_2"))
        // A second role widens: customer + payments reads any order.
        let both = Principal(subject: "b", roles: [.customer, .payments], customerID: "cus_1")
        #expect(Access.decide(both, anyResource: [.staff, .payments], customerOnOwn: true) == .allowed)
    }
}

@Suite struct DigestTests {
    @Test func hexIsLowerCaseTwoDigitsPerByte() {
        #expect(Digest.hex([0x00, 0x0f, 0xab, 0xff]) == "000fabff")
        #expect(Digest.sha256Hex(["a"]).count == 64)
        #expect(Digest.sha256Hex(["ab", "c"]) != Digest.sha256Hex(["a", "bc"]))
    }
}
