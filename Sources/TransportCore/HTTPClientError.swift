public import NIOHTTP1

/// Why a request siotap made (a handshake, a poll, a WebSocket upgrade) did not get what it asked
/// for, said the way a person debugging it needs: the URL, then what the server or the socket said.
public struct HTTPClientError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// No connection: refused, reset, timed out, unknown host.
        case unreachable = "client.unreachable"
        /// The server answered with a status other than the one asked for.
        case refused = "client.refused"
        /// A 3xx: siotap does not follow redirects (a proxy in the way would hide them).
        case redirected = "client.redirected"
        /// A 101 that does not make a valid WebSocket (wrong accept key, no Upgrade header).
        case badUpgrade = "client.bad_upgrade"
        /// The connection ended before a whole answer.
        case closed = "client.closed"
        /// The answer is larger than the limit.
        case tooLarge = "client.too_large"
        /// The TLS handshake failed (the server's certificate was refused, or TLS itself).
        case tls = "client.tls"
    }

    public var code: Code
    /// `METHOD http://host:port/path?query`.
    public var request: String
    /// What went wrong, without the request.
    public var detail: String
    /// The status, for `refused` and `redirected`.
    public var status: Int?

    public init(_ code: Code, request: String, detail: String, status: Int? = nil) {
        self.code = code
        self.request = request
        self.detail = detail
        self.status = status
    }

    public var description: String { "\(request): \(detail)" }

    /// An answer that was not what the request asked for: its status, reason and the start of its
    /// body ("the server answered 400 Bad Request: {"code":3,...}"), or where it redirects.
    public static func unexpected(_ head: HTTPResponseHead, body: [UInt8], request: String) -> HTTPClientError {
        let status = "\(head.status.code) \(head.status.reasonPhrase)"
        if (300..<400).contains(Int(head.status.code)) {
            let location = head.headers.first(name: "Location").map { " to \($0)" } ?? ""
            return HTTPClientError(
                .redirected, request: request, detail: "the server redirected (\(status))\(location); siotap does not follow redirects",
                status: Int(head.status.code)
            )
        }
        let text = bodyStart(body)
        return HTTPClientError(
            .refused, request: request, detail: "the server answered \(status)" + (text.isEmpty ? "" : ": \(text)"),
            status: Int(head.status.code)
        )
    }

    /// A socket-level failure, without NIO's internals.
    package static func unreachable(_ error: any Error, request: String) -> HTTPClientError {
        HTTPClientError(.unreachable, request: request, detail: SocketErrorText.describe(error))
    }

    /// Up to 200 bytes of a body, on one line.
    public static func bodyStart(_ body: [UInt8]) -> String {
        let text = String(decoding: body.prefix(200), as: UTF8.self).split(whereSeparator: \.isWhitespace).joined(separator: " ")
        return body.count > 200 ? text + "…" : text
    }
}
