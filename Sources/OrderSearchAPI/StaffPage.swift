import Foundation
import HTTPTypes
import Hummingbird
import ServiceSupport

/// The staff search page (`GET /`): static files bundled with the binary,
/// served without a token (the page asks for one and sends it to the API).
/// A strict Content-Security-Policy allows only this origin's script and
/// style and no inline code, so even a rendering bug cannot run injected HTML.
enum StaffPage {
    struct Asset: Sendable {
        let body: [UInt8]
        let contentType: String
    }

    /// URL path → file in `StaffPage/`.
    static let files: [String: (name: String, ext: String, contentType: String)] = [
        "/": ("index", "html", "text/html; charset=utf-8"),
        "/app.js": ("app", "js", "text/javascript; charset=utf-8"),
        "/app.css": ("app", "css", "text/css; charset=utf-8"),
    ]

    static var paths: Set<String> { Set(files.keys) }

    static let assets: [String: Asset] = files.mapValues { file in
        guard let url = Bundle.module.url(forResource: file.name, withExtension: file.ext, subdirectory: "StaffPage"),
              let data = try? Data(contentsOf: url)
        else { preconditionFailure("StaffPage/\(file.name).\(file.ext) is not bundled") }
        return Asset(body: Array(data), contentType: file.contentType)
    }

    static let securityHeaders: HTTPFields = [
        .contentSecurityPolicy: "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            + "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        HTTPField.Name("Referrer-Policy")!: "no-referrer",
        .cacheControl: "no-cache",
    ]

    static func addRoutes(to router: Router<AppRequestContext>) {
        for (path, asset) in assets {
            router.get(RouterPath(path)) { _, _ in
                var headers = securityHeaders
                headers[.contentType] = asset.contentType
                return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: asset.body)))
            }
        }
    }
}
