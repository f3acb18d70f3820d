public import NIOCore
public import NIOHTTP1

/// A whole HTTP request, body read.
public struct HTTPRequest: Sendable {
    public var head: HTTPRequestHead
    public var body: [UInt8]
    /// The peer's address, `host:port`.
    public var remote: String
    /// The same, as a socket address (nil for a test's request).
    public var remoteAddress: SocketAddress? = nil
    /// The loop of the connection it came on: a relay keeps its upstream exchange there.
    public var eventLoop: (any EventLoop)? = nil

    package init(head: HTTPRequestHead, body: [UInt8], remote: String, eventLoop: (any EventLoop)? = nil) {
        self.head = head
        self.body = body
        self.remote = remote
        self.eventLoop = eventLoop
    }

    public var method: HTTPMethod { head.method }
    public var uri: String { head.uri }
    public var headers: HTTPHeaders { head.headers }

    /// The path, without the query.
    public var path: Substring { head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "" }

    /// The query string after `?`, undecoded.
    public var query: Substring {
        guard let mark = head.uri.firstIndex(of: "?") else { return "" }
        return head.uri[head.uri.index(after: mark)...]
    }
}

/// A whole HTTP response.
public struct HTTPResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Close the connection after this response.
    public var closeConnection: Bool
    /// Answer nothing: reset the connection (a TCP RST), as a network failure would. Honoured on
    /// the byte relay's answering path (``HTTPRelayDecision/answer(_:)``).
    public var resetConnection = false

    public init(status: HTTPResponseStatus, headers: HTTPHeaders = [:], body: [UInt8] = [], closeConnection: Bool = false) {
        self.status = status
        self.headers = headers
        self.body = body
        self.closeConnection = closeConnection
    }

    public init(status: HTTPResponseStatus, contentType: String, body: String) {
        self.init(status: status, headers: ["Content-Type": contentType], body: Array(body.utf8))
    }

    /// No answer: the connection is reset.
    public static var reset: HTTPResponse {
        var response = HTTPResponse(status: .badGateway, closeConnection: true)
        response.resetConnection = true
        return response
    }

    /// The answer to a body over the server's limit; the connection closes after it.
    package static let payloadTooLarge = HTTPResponse(
        status: .payloadTooLarge, headers: ["Content-Type": "text/plain"], body: Array("Payload Too Large".utf8), closeConnection: true
    )

    /// Its bytes as HTTP/1.1 puts them on the wire, for a writer past NIO's codec (the byte
    /// relay, a refusal before any request was read).
    package func write(to out: inout ByteBuffer, keepAlive: Bool) {
        let head = head(version: .http1_1, keepAlive: keepAlive)
        out.writeString("HTTP/1.1 \(head.status.code) \(head.status.reasonPhrase)\r\n")
        for (name, value) in head.headers { out.writeString("\(name): \(value)\r\n") }
        out.writeStaticString("\r\n")
        out.writeBytes(body)
    }

    /// The head it goes out with: its length, and `Connection: close` unless the connection is kept.
    package func head(version: HTTPVersion, keepAlive: Bool) -> HTTPResponseHead {
        var headers = headers
        headers.replaceOrAdd(name: "Content-Length", value: String(body.count))
        if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        return HTTPResponseHead(version: version, status: status, headers: headers)
    }
}
