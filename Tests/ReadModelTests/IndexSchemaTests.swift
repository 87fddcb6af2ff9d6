import Foundation
import IndexSchema
import JSONSupport
import OrderDomain
@testable import ReadModel
import Testing

/// `IndexField` is the one list of the order index's fields: the mapping file
/// and the document writer must agree with it exactly.
@Suite struct IndexSchemaTests {
    /// Every path of the mapping: properties, object children and multi-fields.
    static func mappingPaths() throws -> Set<String> {
        let mapping = try JSONParser.parse(try IndexLayout.mapping())
        var paths: Set<String> = []
        func walk(_ prefix: String, _ properties: JSONValue?) {
            for (name, definition) in properties?.objectValue?.pairs ?? [] {
                let path = prefix + name
                paths.insert(path)
                for (sub, _) in definition["fields"]?.objectValue?.pairs ?? [] { paths.insert(path + "." + sub) }
                walk(path + ".", definition["properties"])
            }
        }
        walk("", mapping["mappings"]?["properties"])
        return paths
    }

    /// Every path of a written document (objects and the fields of array elements included).
    static func documentPaths(_ document: OrderDocument) throws -> Set<String> {
        var w = JSONWriter()
        document.writeJSON(into: &w)
        var paths: Set<String> = []
        func walk(_ prefix: String, _ value: JSONValue) {
            switch value {
            case .object(let object):
                for (name, child) in object.pairs {
                    paths.insert(prefix + name)
                    walk(prefix + name + ".", child)
                }
            case .array(let elements):
                for element in elements { walk(prefix, element) }
            default: break
            }
        }
        walk("", try JSONParser.parse(w.bytes))
        return paths
    }

    static let sample = OrderDocument(
        orderID: "ord_1", version: 2, status: "paid", customerID: "cus_1", customerVersion: 3, customerName: "Alice Smith",
        customerEmail: "alice@example.com", customerCountry: "DE", currency: "EUR", total: "59.97",
        items: [.init(sku: "MUG-1", name: "Blue Mug", quantity: 3, unitPrice: "19.99")], shippingCountry: "DE", shippingCity: "Berlin",
        trackingNumber: "TRK1", note: "gift", createdAt: Timestamp(millisecondsSinceEpoch: 1_790_000_000_000),
        updatedAt: Timestamp(millisecondsSinceEpoch: 1_790_000_100_000)
    )

    @Test func theMappingHasExactlyTheIndexFields() throws {
        let declared = Set((IndexField.documentFields + IndexField.multiFields).map(\.path))
        let mapped = try Self.mappingPaths()
        #expect(mapped.subtracting(declared).isEmpty, "mapped but not in IndexField: \(mapped.subtracting(declared).sorted())")
        #expect(declared.subtracting(mapped).isEmpty, "in IndexField but not mapped: \(declared.subtracting(mapped).sorted())")
    }

    @Test func theWriterEmitsExactlyTheDocumentFields() throws {
        #expect(try Self.documentPaths(Self.sample) == Set(IndexField.documentFields.map(\.path)))
    }

    @Test func fieldsReadBackFromAWrittenDocument() throws {
        var w = JSONWriter()
        Self.sample.writeJSON(into: &w)
        let source = try JSONParser.parse(w.bytes)
        #expect(source[.customerName]?.stringValue == "Alice Smith")
        #expect(source[.customerVersion]?.intValue == 3)
        #expect(source[.createdMonth]?.stringValue == Self.sample.createdAt.yearMonth)
        #expect(source[.customerNameRaw] == nil)
    }

    @Test func documentVersionPacksOrderHighAndCustomerLow() {
        let version = DocumentVersion(order: 2, customer: 7)
        #expect(version.packed == 2 << 32 | 7)
        #expect(DocumentVersion(packed: version.packed) == version)
        #expect(DocumentVersion(order: 3, customer: 1).packed > DocumentVersion(order: 2, customer: 999).packed)
        #expect(Self.sample.externalVersion == DocumentVersion(order: 2, customer: 3).packed)
    }
}
