import Foundation
import Hummingbird

/// An RFC 9457 problem detail. The only error type that reaches HTTP clients;
/// everything else is turned into one of these at the edge, so no SQL text,
/// stack trace or Elasticsearch request can leak into a response.
public struct Problem: HTTPResponseError, Sendable {
    public struct FieldProblem: Sendable, Equatable, Encodable {
        public let field: String
        public let message: String
        public init(field: String, message: String) {
            self.field = field
            self.message = message
        }
    }

    public let status: HTTPResponse.Status
    public let title: String
    public let detail: String?
    public let errors: [FieldProblem]
    /// Extra members (for example `current_status`).
    public let extensions: [(String, String)]
    public let headers: HTTPFields

    public init(_ status: HTTPResponse.Status, title: String? = nil, detail: String? = nil, errors: [FieldProblem] = [],
                extensions: [(String, String)] = [], headers: HTTPFields = [:]) {
        self.status = status
        self.title = title ?? status.reasonPhrase
        self.detail = detail
        self.errors = errors
        self.extensions = extensions
        self.headers = headers
    }

    public var typeURI: String {
        switch status.code {
        case 400: "https://orders.example/problems/bad-request"
        case 401: "https://orders.example/problems/unauthenticated"
        case 403: "https://orders.example/problems/forbidden"
        case 404: "https://orders.example/problems/not-found"
        case 405: "https://orders.example/problems/method-not-allowed"
        case 409: "https://orders.example/problems/conflict"
        case 412: "https://orders.example/problems/precondition-failed"
        case 413: "https://orders.example/problems/payload-too-large"
        case 415: "https://orders.example/problems/unsupported-media-type"
        case 422: "https://orders.example/problems/validation"
        case 502, 503, 504: "https://orders.example/problems/unavailable"
        default: "about:blank"
        }
    }

    /// The `application/problem+json` body: the RFC 9457 members, `errors`, then the extensions.
    public var body: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? #"{"status":\#(status.code)}"#
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var fields = headers
        fields[.contentType] = "application/problem+json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    // Common problems.
    public static func badParameter(_ name: String, _ message: String) -> Problem {
        Problem(.badRequest, detail: "invalid parameter \(name): \(message)", errors: [.init(field: name, message: message)])
    }

    public static func validation(_ errors: [FieldProblem]) -> Problem {
        Problem(.unprocessableContent, title: "Validation failed", detail: "the request has \(errors.count) invalid field(s)", errors: errors)
    }

    public static func unavailable(_ dependency: String) -> Problem {
        Problem(.serviceUnavailable, detail: "\(dependency) is unavailable; retry later", headers: [.retryAfter: "1"])
    }
}

extension Response {
    /// A JSON response from already serialized bytes.
    public static func json(_ status: HTTPResponse.Status = .ok, _ body: String, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    public static func json(_ status: HTTPResponse.Status = .ok, bytes: [UInt8], headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

extension Problem: Encodable {
    private struct Key: CodingKey {
        let stringValue: String
        init(_ name: String) { stringValue = name }
        init?(stringValue: String) { self.init(stringValue) }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    /// Encodable by hand only because the extension members are named at run time.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(typeURI, forKey: Key("type"))
        try container.encode(title, forKey: Key("title"))
        try container.encode(status.code, forKey: Key("status"))
        try container.encodeIfPresent(detail, forKey: Key("detail"))
        if !errors.isEmpty { try container.encode(errors, forKey: Key("errors")) }
        for (name, value) in extensions { try container.encode(value, forKey: Key(name)) }
    }
}
