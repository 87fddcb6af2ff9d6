/// The roles of the contract's table. A token's `roles` claim may carry
/// others (an identity provider's own); they grant nothing here.
public enum Role: String, Sendable, CaseIterable, Codable {
    case staff
    case customer
    case payments
    case fulfilment
    case metrics
}

/// Who a request acts for: the verified claims of its bearer token.
public struct Principal: Sendable, Equatable {
    /// The token's `sub`. Idempotency keys belong to it.
    public let subject: String
    public let roles: Set<Role>
    /// Only for the role `customer`: the customer this principal is.
    public let customerID: String?

    public init(subject: String, roles: Set<Role>, customerID: String?) {
        self.subject = subject
        self.roles = roles
        self.customerID = customerID
    }

    /// What `AUTH_DISABLED=true` makes every request act as.
    public static let unauthenticatedDeveloper = Principal(subject: "auth-disabled", roles: [.staff], customerID: nil)

    public func has(_ role: Role) -> Bool { roles.contains(role) }

    public func hasAny(of roles: Set<Role>) -> Bool { !self.roles.isDisjoint(with: roles) }
}
