import Foundation
import JSONSupport
import Logging
import OrderStore
import OrderWriteAPI
import LibPQClient
import RequestParsing
import Security
import Testing
import TokenSigning

/// The write API's OpenAPI document and its code cannot drift apart: every
/// route is documented and every documented path exists; every body schema
/// lists exactly the fields the parser accepts. No server needed (the pool
/// connects lazily and is never used).
@Suite struct WriteOpenAPIConformanceTests {
    static let document = try! JSONParser.parse(writeAPIDocument)

    static func routes() throws -> Set<String> {
        let router = buildWriteRouter(service: WriteService(pool: WriteRouterTests.unreachablePool, logger: Logger(label: "unused")), auth: .disabled,
                                      signer: try TokenSigner(key: String(repeating: "k", count: 32)), logger: Logger(label: "unused"))
        return Set(router.routes.map { "\($0.method.rawValue) \($0.path)".replacingOccurrences(of: ":id", with: "{id}") })
    }

    static func documentedOperations(_ document: JSONValue) -> Set<String> {
        var operations: Set<String> = []
        for (path, item) in document["paths"]?.objectValue?.pairs ?? [] {
            for (method, _) in item.objectValue?.pairs ?? [] { operations.insert("\(method.uppercased()) \(path)") }
        }
        return operations
    }

    @Test func everyRouteIsDocumentedAndEveryDocumentedRouteExists() throws {
        let code = try Self.routes()
        let documented = Self.documentedOperations(Self.document)
        #expect(code.subtracting(documented).isEmpty, "routes missing from openapi.json: \(code.subtracting(documented).sorted())")
        #expect(documented.subtracting(code).isEmpty, "documented but not routed: \(documented.subtracting(code).sorted())")
    }

    @Test func bodySchemasListExactlyTheAcceptedFields() throws {
        let schemas = try #require(Self.document["components"]?["schemas"])
        for (schema, fields) in CommandBodies.fields {
            let properties = Set(schemas[schema]?["properties"]?.objectValue?.keys ?? [])
            #expect(properties == fields, "\(schema): documented \(properties.sorted()) vs accepted \(fields.sorted())")
            #expect(schemas[schema]?["additionalProperties"] == .bool(false), "\(schema) must reject unknown fields")
        }
    }

    @Test func protectedOperationsNameTheirRolesAndErrorsAreProblems() throws {
        for (path, item) in Self.document["paths"]?.objectValue?.pairs ?? [] {
            for (method, operation) in item.objectValue?.pairs ?? [] {
                let isPublic = operation["security"]?.arrayValue?.isEmpty == true
                #expect(isPublic || !(operation["x-roles"]?.arrayValue ?? []).isEmpty, "\(method) \(path) has no roles")
                if !isPublic { #expect(operation["responses"]?["401"] != nil && operation["responses"]?["403"] != nil, "\(method) \(path)") }
            }
        }
        #expect(Self.document["openapi"]?.stringValue == "3.1.0")
    }
}
