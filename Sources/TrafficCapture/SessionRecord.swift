public import SocketIOProtocol

/// A new Engine.IO session.
public struct SessionRecord: Sendable, Hashable, Decodable {
    /// Path and query as the client requested them.
    public var url: String
    /// The Engine.IO path the session was found on (`/socket.io/` unless the app mounts it
    /// elsewhere), with its trailing `/`.
    public var path: String?
    /// The Engine.IO protocol version (3 or 4 on the wire).
    public var eio: EngineIOVersion
    public var transport: EngineTransport
    /// The Engine.IO session id, once the server's open packet has been seen.
    public var sid: String?
    /// Request headers in wire order, names as sent.
    public var headers: JSONValue?
    /// The handshake answer's headers in wire order (a polling handshake relayed by the proxy):
    /// its CORS answer, its cookies (a load balancer's sticky one).
    public var answerHeaders: JSONValue?
    /// The client's address.
    public var remote: String?
    /// Where the proxy forwarded the session.
    public var upstream: String?
    /// The `host:port` the client asked for (forward mode: its CONNECT or absolute URI).
    public var target: String?
    /// `http` or `https`: how the client spoke to siotap.
    public var scheme: String?
    /// The TLS of the session's connections, when there was any.
    public var tls: SessionTLS?
    /// `msgpack` when the session's packets are msgpack maps (told by its first packet, or by
    /// `--parser`); absent for the default JSON text.
    public var parser: SocketIOParser?
    /// The built-in server's app that answered the session (`chat`, `conformance`), when siotap
    /// itself ran it (`siotap demo`): replay then knows what to replay against.
    public var app: String?

    public init(
        url: String, path: String? = nil, eio: EngineIOVersion, transport: EngineTransport, sid: String? = nil, headers: JSONValue? = nil,
        remote: String? = nil, upstream: String? = nil, target: String? = nil, scheme: String? = nil, tls: SessionTLS? = nil,
        parser: SocketIOParser? = nil, app: String? = nil
    ) {
        self.parser = parser
        self.app = app
        self.url = url
        self.path = path
        self.eio = eio
        self.transport = transport
        self.sid = sid
        self.headers = headers
        self.remote = remote
        self.upstream = upstream
        self.target = target
        self.scheme = scheme
        self.tls = tls
    }

    private enum CodingKeys: String, CodingKey {
        case url, path, eio, transport, sid, headers, remote, upstream, target, scheme, tls, parser, app
        case answerHeaders = "answer_headers"
    }
}

/// What was agreed with the client (version, cipher, the name it asked for) and what the
/// upstream's certificate said.
public struct SessionTLS: Sendable, Hashable, Decodable {
    public var version: String?
    public var cipher: String?
    public var sni: String?
    public var upstreamCertificate: Certificate?

    public struct Certificate: Sendable, Hashable, Decodable {
        public var subject: String
        public var issuer: String
        /// RFC 3339.
        public var notAfter: String

        public init(subject: String, issuer: String, notAfter: String) {
            self.subject = subject
            self.issuer = issuer
            self.notAfter = notAfter
        }

        enum CodingKeys: String, CodingKey {
            case subject, issuer
            case notAfter = "not_after"
        }
    }

    public init(version: String? = nil, cipher: String? = nil, sni: String? = nil, upstreamCertificate: Certificate? = nil) {
        self.version = version
        self.cipher = cipher
        self.sni = sni
        self.upstreamCertificate = upstreamCertificate
    }

    enum CodingKeys: String, CodingKey {
        case version, cipher, sni
        case upstreamCertificate = "upstream_cert"
    }

    /// As written in the capture, in this order.
    var jsonValue: JSONValue {
        var members: [JSONObject.Member] = []
        func add(_ key: String, _ value: String?) {
            if let value { members.append(.init(key: JSONString(key), value: .string(JSONString(value)))) }
        }
        add("version", version)
        add("cipher", cipher)
        add("sni", sni)
        if let certificate = upstreamCertificate {
            let fields = [("subject", certificate.subject), ("issuer", certificate.issuer), ("not_after", certificate.notAfter)]
            members.append(.init(key: JSONString("upstream_cert"), value: .object(JSONObject(fields.map { .init(key: JSONString($0.0), value: .string(JSONString($0.1))) }))))
        }
        return .object(JSONObject(members))
    }
}
