import ArgumentParser
import Foundation
import Security
import ServiceSupport

/// `order-admin token`: mints an HS256 bearer token with `AUTH_JWT_SECRET`.
struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print an HS256 bearer token signed with AUTH_JWT_SECRET.",
        discussion: "Roles: \(Role.allCases.map(\.rawValue).joined(separator: ", ")). A customer token needs --customer-id. "
            + "AUTH_ISSUER and AUTH_AUDIENCE, when set, become the token's iss and aud."
    )

    @Option(name: .customLong("role"), help: "A role of the token (repeat for several).")
    var roles: [Role] = []

    @Option(name: .customLong("customer-id"), help: "The customer a `customer` token acts for.")
    var customerID: String?

    @Option(help: "The token's subject (sub).")
    var subject: String?

    @Option(help: "Lifetime: a number with s, m, h or d (for example 30m, 1h, 7d).")
    var ttl: String = "1h"

    func validate() throws {
        if roles.isEmpty { throw ValidationError("give at least one --role") }
        if roles.contains(.customer), customerID?.isEmpty ?? true { throw ValidationError("a customer token needs --customer-id") }
        if DurationText.seconds(ttl) == nil { throw ValidationError("--ttl must be a positive number with s, m, h or d, at most 366d") }
    }

    func run() async throws {
        let environment = ProcessInfoEnvironment.all
        guard let secret = environment["AUTH_JWT_SECRET"], !secret.isEmpty else {
            throw ValidationError("AUTH_JWT_SECRET is not set")
        }
        let minter: AccessTokenMinter
        do { minter = try await AccessTokenMinter(secret: secret) } catch { throw ValidationError("\(error)") }
        let auth = AuthConfiguration(environment: environment)
        let sub = subject ?? customerID.map { "customer:\($0)" } ?? roles.map(\.rawValue).joined(separator: "+")
        let token = try await minter.mint(subject: sub, roles: roles, customerID: customerID, ttl: .seconds(DurationText.seconds(ttl) ?? 3600),
                                          issuer: auth.issuer, audience: auth.audience)
        print(token)
    }
}

extension Role: ExpressibleByArgument {}
