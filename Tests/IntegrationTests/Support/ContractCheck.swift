import JSONSupport
import OrderSearchAPI
import OrderWriteAPI
import Testing

/// Every reply the integration tests receive from a documented operation must
/// carry a status that operation documents in the API's OpenAPI document: the
/// code cannot answer with a status the document does not name.
enum ContractCheck {
    static let documents = [try! JSONParser.parse(writeAPIDocument), try! JSONParser.parse(searchAPIDocument)]

    static func check(method: String, path rawPath: String, status: Int, sourceLocation: SourceLocation) {
        let path = String(rawPath.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        for document in documents {
            guard let operation = operation(in: document, method: method, path: path) else { continue }
            let statuses = Set(operation["responses"]?.objectValue?.keys ?? [])
            #expect(statuses.contains(String(status)), "\(method) \(path) answered \(status), which openapi.json does not document",
                    sourceLocation: sourceLocation)
            return
        }
    }

    static func operation(in document: JSONValue, method: String, path: String) -> JSONValue? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        for (template, item) in document["paths"]?.objectValue?.pairs ?? [] {
            let parts = template.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == segments.count,
                  zip(parts, segments).allSatisfy({ $0.hasPrefix("{") || $0 == $1 }) else { continue }
            return item[method.lowercased()]
        }
        return nil
    }
}
