public import SocketIOProtocol

/// A new Engine.IO session.
public struct SessionRecord: Sendable, Hashable, Decodable {
    /// Path and query as the client requested them.
    public var url: String
    /// The Engine.IO path the session was found on (`/socket.io/` unless the app mounts it
    /// elsewhere), with its trailing `/`.
    public var path: String?
    public var eio: Int
    public var transport: EngineTransport
    /// The Engine.IO session id, once the server's open packet has been seen.
    public var sid: String?
    /// Request headers in wire order, names as sent.
    public var headers: JSONValue?
    /// The client's address.
    public var remote: String?
    /// Where the proxy forwarded the session.
    public var upstream: String?

    public init(
        url: String, path: String? = nil, eio: Int, transport: EngineTransport, sid: String? = nil, headers: JSONValue? = nil,
        remote: String? = nil, upstream: String? = nil
    ) {
        self.url = url
        self.path = path
        self.eio = eio
        self.transport = transport
        self.sid = sid
        self.headers = headers
        self.remote = remote
        self.upstream = upstream
    }
}
