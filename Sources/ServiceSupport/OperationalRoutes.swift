import Hummingbird
import Security

extension Observability {
    /// Adds `/health`, `/ready` and `/metrics`. `readiness` names the first
    /// dependency that does not answer, or nil when all do.
    static func addOperationalRoutes(to router: Router<AppRequestContext>, readiness: @escaping @Sendable () async -> String?) {
        router.get("/health") { _, _ in Response.json(.ok, #"{"status":"ok"}"#) }
        router.get("/ready") { _, _ in
            if let failed = await readiness() {
                throw Problem(.serviceUnavailable, detail: "dependency not ready: \(failed)", extensions: [("dependency", failed)])
            }
            return Response.json(.ok, #"{"status":"ready"}"#)
        }
        router.get("/metrics") { _, context in
            try context.requireRole([.metrics, .staff])
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer()))
            )
        }
    }
}
