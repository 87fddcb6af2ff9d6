import CCurl
import CCurlShim
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One libcurl easy handle: a reusable, keep-alive HTTP connection. Blocking;
/// used only from the client's own threads, one request at a time. This is the
/// only file that handles libcurl's raw pointers.
final class CurlEasy {
    private let handle: UnsafeMutableRawPointer
    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    /// Collects one response; passed to the C callbacks through `Unmanaged`.
    private final class Sink {
        var body: [UInt8] = []
        var headers: [(String, String)] = []
        func reset() {
            body.removeAll(keepingCapacity: true)
            headers.removeAll()
        }
    }

    private let sink = Sink()

    init() {
        _ = Self.globalInit
        handle = curl_easy_init()
    }

    deinit { curl_easy_cleanup(handle) }

    struct TLS {
        var caFile: String?
    }

    /// Performs one request. Returns the status, headers and body, or a libcurl error.
    func perform(
        method: String, url: String, headers: [(String, String)], body: [UInt8]?,
        connectTimeoutMs: Int, timeoutMs: Int, lowSpeedSeconds: Int, tls: TLS, basicAuth: (String, String)?
    ) -> Result<HTTPResponse, TransportError> {
        curl_easy_reset(handle)
        sink.reset()
        ccurl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        ccurl_setopt_string(handle, CURLOPT_URL, url)
        ccurl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, connectTimeoutMs)
        ccurl_setopt_long(handle, CURLOPT_TIMEOUT_MS, timeoutMs)
        // A stuck peer: less than 1 byte/s for this long aborts the transfer.
        ccurl_setopt_long(handle, CURLOPT_LOW_SPEED_LIMIT, 1)
        ccurl_setopt_long(handle, CURLOPT_LOW_SPEED_TIME, lowSpeedSeconds)
        ccurl_setopt_long(handle, CURLOPT_TCP_NODELAY, 1)
        ccurl_setopt_string(handle, CURLOPT_USERAGENT, "order-search/1.0 (libcurl)")
        if let caFile = tls.caFile { ccurl_setopt_string(handle, CURLOPT_CAINFO, caFile) }
        if let (user, password) = basicAuth {
            ccurl_setopt_long(handle, CURLOPT_HTTPAUTH, 1 /* CURLAUTH_BASIC, a macro Swift does not import */)
            ccurl_setopt_string(handle, CURLOPT_USERNAME, user)
            ccurl_setopt_string(handle, CURLOPT_PASSWORD, password)
        }
        switch method {
        case "GET": ccurl_setopt_long(handle, CURLOPT_HTTPGET, 1)
        case "HEAD": ccurl_setopt_long(handle, CURLOPT_NOBODY, 1)
        default: ccurl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, method)
        }
        var list: UnsafeMutablePointer<curl_slist>? = nil
        for (name, value) in headers { list = curl_slist_append(list, "\(name): \(value)") }
        // Large bodies would otherwise wait a second for "100 Continue".
        list = curl_slist_append(list, "Expect:")
        defer { curl_slist_free_all(list) }
        ccurl_setopt_slist(handle, CURLOPT_HTTPHEADER, list)

        let context = Unmanaged.passUnretained(sink).toOpaque()
        ccurl_setopt_pointer(handle, CURLOPT_WRITEDATA, context)
        ccurl_setopt_write_function(handle) { pointer, size, count, userdata in
            let sink = Unmanaged<Sink>.fromOpaque(userdata!).takeUnretainedValue()
            let length = size * count
            pointer.map { sink.body.append(contentsOf: UnsafeRawBufferPointer(start: $0, count: length)) }
            return length
        }
        ccurl_setopt_pointer(handle, CURLOPT_HEADERDATA, context)
        ccurl_setopt_header_function(handle) { pointer, size, count, userdata in
            let sink = Unmanaged<Sink>.fromOpaque(userdata!).takeUnretainedValue()
            let length = size * count
            if let pointer {
                let line = String(decoding: UnsafeRawBufferPointer(start: pointer, count: length), as: UTF8.self)
                if line.hasPrefix("HTTP/") {
                    sink.headers.removeAll()  // a new response (after a redirect or 100)
                } else if let colon = line.firstIndex(of: ":") {
                    let name = String(line[..<colon]).lowercased()
                    let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
                    sink.headers.append((name, value))
                }
            }
            return length
        }

        let code: CURLcode
        if let body, method != "GET", method != "HEAD" {
            // POSTFIELDS does not copy: the buffer stays alive for the whole perform.
            code = body.withUnsafeBytes { buffer -> CURLcode in
                ccurl_setopt_off_t(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(buffer.count))
                ccurl_setopt_pointer(handle, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: buffer.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!))
                return curl_easy_perform(handle)
            }
        } else {
            code = curl_easy_perform(handle)
        }
        guard code == CURLE_OK else {
            let kind: TransportError.Kind = switch code {
            case CURLE_OPERATION_TIMEDOUT: .timeout
            case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE: .tls
            default: .connection
            }
            return .failure(TransportError(kind: kind, curlCode: Int(code.rawValue)))
        }
        var status = 0
        ccurl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return .success(HTTPResponse(status: status, headers: sink.headers, body: sink.body))
    }
}
