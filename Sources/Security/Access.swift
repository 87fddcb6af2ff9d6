/// The contract's role table, as decisions a handler acts on.
public enum Access: Sendable, Equatable {
    /// Allowed on any resource.
    case allowed
    /// Allowed only if the resource belongs to this customer; another
    /// customer's resource is answered as if it did not exist (404).
    case ownedBy(customerID: String)
    /// The principal's roles do not allow the request (403).
    case forbidden

    /// - Parameters:
    ///   - anyResource: roles that may act on every resource.
    ///   - customerOnOwn: whether the `customer` role may act on its own resources.
    public static func decide(_ principal: Principal, anyResource: Set<Role>, customerOnOwn: Bool) -> Access {
        if principal.hasAny(of: anyResource) { return .allowed }
        if customerOnOwn, principal.has(.customer), let id = principal.customerID { return .ownedBy(customerID: id) }
        return .forbidden
    }
}

extension Access {
    /// Whether this decision lets the principal act on a resource of that customer.
    public func permits(ownerCustomerID: String) -> Bool {
        switch self {
        case .allowed: true
        case .ownedBy(let customerID): customerID == ownerCustomerID
        case .forbidden: false
        }
    }
}
