import Foundation
import Hummingbird
import JSONSupport
import OrderDomain
import ServiceSupport

/// Reads a command body: enforces media type, size and JSON syntax, then
/// lets handlers pull typed fields while it records every type error and
/// unknown field, so one 422 can list all offending fields.
struct RequestBody {
    static let maxBytes = 1 << 20

    let raw: [UInt8]
    let object: JSONObject

    static func read(_ request: inout Request, allowEmpty: Bool = false) async throws -> RequestBody {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBytes {
            throw Problem(.contentTooLarge, detail: "the request body is larger than 1 MiB")
        }
        let buffer = try await request.collectBody(upTo: maxBytes)
        let bytes = Array(buffer.readableBytesView)
        if bytes.isEmpty {
            if allowEmpty { return RequestBody(raw: Array("{}".utf8), object: JSONObject()) }
            // No body is not a body of another media type (415): it is not the JSON object the command needs.
            throw Problem(.badRequest, title: "Malformed JSON", detail: "the body is empty; this request needs a JSON object")
        }
        guard Self.isJSON(request.headers[.contentType]) else {
            throw Problem(.unsupportedMediaType, detail: "the body must be application/json")
        }
        let value: JSONValue
        do { value = try JSONParser.parse(bytes) } catch {
            throw Problem(.badRequest, title: "Malformed JSON", detail: "the body is not valid JSON (\(error))")
        }
        guard case .object(let object) = value else {
            throw Problem.validation([.init(field: "(body)", message: "must be a JSON object")])
        }
        return RequestBody(raw: bytes, object: object)
    }

    static func isJSON(_ contentType: String?) -> Bool {
        guard let contentType else { return false }
        let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        return mediaType == "application/json" || (mediaType.hasPrefix("application/") && mediaType.hasSuffix("+json"))
    }
}
