import Foundation
import Testing
@testable import Security

@Suite struct VerifiedTokenCacheTests {
    let alice = Principal(subject: "alice", roles: [.staff], customerID: nil)

    @Test func aVerifiedTokenIsRememberedUntilItsExpiryOrTheLifetime() {
        let cache = VerifiedTokenCache(capacity: 10, lifetime: 60)
        let now = Date()
        let key = VerifiedTokenCache.key("header.payload.signature")
        cache.store(alice, for: key, expires: now.addingTimeInterval(30), now: now)
        #expect(cache.principal(for: key, now: now.addingTimeInterval(29)) == alice)
        #expect(cache.principal(for: key, now: now.addingTimeInterval(31)) == nil)  // past exp
        cache.store(alice, for: key, expires: now.addingTimeInterval(3600), now: now)
        #expect(cache.principal(for: key, now: now.addingTimeInterval(59)) == alice)
        #expect(cache.principal(for: key, now: now.addingTimeInterval(61)) == nil)  // past the lifetime, though exp is later
    }

    @Test func anyOtherTokenMisses() {
        let cache = VerifiedTokenCache()
        cache.store(alice, for: VerifiedTokenCache.key("header.payload.signature"), expires: Date().addingTimeInterval(60))
        #expect(cache.principal(for: VerifiedTokenCache.key("header.payload.signaturf")) == nil)
        #expect(cache.principal(for: VerifiedTokenCache.key("header.payload.signature ")) == nil)
    }

    @Test func itNeverHoldsMoreThanItsCapacity() {
        let cache = VerifiedTokenCache(capacity: 3, lifetime: 60)
        let keys = (0..<4).map { VerifiedTokenCache.key("token-\($0)") }
        for key in keys { cache.store(alice, for: key, expires: Date().addingTimeInterval(60)) }
        #expect(cache.principal(for: keys[3]) == alice)
        #expect(keys.prefix(3).filter { cache.principal(for: $0) != nil }.isEmpty)  // emptied when full
    }
}
