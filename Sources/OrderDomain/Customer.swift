/// The customer aggregate: identity and contact data that order documents embed.
public struct Customer: Sendable, Equatable {
    public let id: String
    public private(set) var version: Int
    public private(set) var name: String
    public private(set) var email: String
    public private(set) var country: String
    public let createdAt: Timestamp
    public private(set) var updatedAt: Timestamp

    /// Rehydrates a stored customer (no rules run: the store only holds valid ones).
    public init(id: String, version: Int, name: String, email: String, country: String, createdAt: Timestamp, updatedAt: Timestamp) {
        self.id = id
        self.version = version
        self.name = name
        self.email = email
        self.country = country
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// The rules on customer fields; nil values are not checked (absent from a PATCH).
    public static func validate(name: String?, email: String?, country: String?) -> [FieldError] {
        var errors = FieldErrors()
        if let name { Rules.text(name, field: "name", max: 200, into: &errors) }
        if let email { Rules.email(email, field: "email", into: &errors) }
        if let country { Rules.country(country, field: "country", into: &errors) }
        return errors.errors
    }

    public static func register(id: String, name: String, email: String, country: String, now: Timestamp) throws(DomainError) -> (Customer, DomainEvent) {
        let errors = validate(name: name, email: email, country: country)
        guard errors.isEmpty else { throw .validation(errors) }
        let customer = Customer(id: id, version: 1, name: name, email: email, country: country, createdAt: now, updatedAt: now)
        return (customer, customer.event(.customerRegistered))
    }

    /// Applies the given changes. Returns nil (and changes nothing) when every
    /// given value equals the current one, so a repeated PATCH is not a new version.
    public mutating func change(name: String?, email: String?, country: String?, now: Timestamp) throws(DomainError) -> DomainEvent? {
        let errors = Self.validate(name: name, email: email, country: country)
        guard errors.isEmpty else { throw .validation(errors) }
        let changed = (name.map { $0 != self.name } ?? false) || (email.map { $0 != self.email } ?? false)
            || (country.map { $0 != self.country } ?? false)
        guard changed else { return nil }
        if let name { self.name = name }
        if let email { self.email = email }
        if let country { self.country = country }
        version += 1
        updatedAt = max(now, updatedAt)
        return event(.customerChanged)
    }

    private func event(_ kind: DomainEvent.Kind) -> DomainEvent {
        DomainEvent(kind: kind, aggregateType: .customer, aggregateID: id, aggregateVersion: version, occurredAt: updatedAt)
    }
}
