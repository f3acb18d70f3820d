import NIOHTTP1

/// Which headers cross the proxy: the end-to-end ones, as the client sent them (its `Host`
/// included, so virtual hosts and CORS checks see the same), and not the hop-by-hop ones.
enum ProxyHeaders {
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "content-length",
    ]

    /// The end-to-end headers: without the hop-by-hop ones, nor those the `Connection` header
    /// names (RFC 9110 §7.6.1), names compared case-insensitively.
    static func endToEnd(_ headers: HTTPHeaders) -> HTTPHeaders {
        var dropped = hopByHop
        for value in headers[canonicalForm: "Connection"] { dropped.insert(value.lowercased()) }
        var kept = HTTPHeaders()
        for (name, value) in headers where !dropped.contains(name.lowercased()) { kept.add(name: name, value: value) }
        return kept
    }

    /// The head of a request as relayed upstream, its body (whole) `bodyLength` bytes long.
    /// `engineIO`: a request whose bodies the proxy decodes.
    static func upstreamHead(_ head: HTTPRequestHead, bodyLength: Int, engineIO: Bool) -> HTTPRequestHead {
        var headers = endToEnd(head.headers)
        // Engine.IO servers gzip polling bodies of 1 KB and more when asked; not asking keeps the
        // bodies readable (the same choice as dropping the permessage-deflate offer).
        if engineIO { headers.remove(name: "Accept-Encoding") }
        // The body is relayed whole, so its length is known: no chunked re-encoding upstream.
        if bodyLength > 0 || head.headers.contains(name: "Content-Length") {
            headers.add(name: "Content-Length", value: String(bodyLength))
        }
        return HTTPRequestHead(version: .http1_1, method: head.method, uri: head.uri, headers: headers)
    }
}
