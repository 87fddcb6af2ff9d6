import JSONSupport

extension JSONValue {
    /// The value at a field's path in a `_source` document (`customer.name` → `["customer"]["name"]`).
    public subscript(field: IndexField) -> JSONValue? {
        var value: JSONValue? = self
        for component in field.components { value = value?[component] }
        return value
    }
}
