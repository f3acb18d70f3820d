public import SocketIOProtocol

/// Something that could not be decoded; the traffic still flowed.
public struct ErrorRecord: Sendable, Hashable, Decodable {
    public var dir: Direction?
    /// A stable code: `engineio.unknown_packet_type`, `socketio.invalid_payload`, …
    public var code: ErrorCode
    public var message: String
    /// What could not be decoded: text as it was, binary as base64 prefixed `base64:`.
    public var raw: String?

    public init(dir: Direction?, code: ErrorCode, message: String, raw: String? = nil) {
        self.dir = dir
        self.code = code
        self.message = message
        self.raw = raw
    }
}

/// An error record's code: `layer.what`, lower case. A struct, not an enum: readers meet codes
/// that later versions add, and keep them.
public struct ErrorCode: RawRepresentable, Sendable, Hashable, Codable, ExpressibleByStringLiteral, CustomStringConvertible {
    public var rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { rawValue = value }
    public init(from decoder: any Decoder) throws { rawValue = try decoder.singleValueContainer().decode(String.self) }


    public var description: String { rawValue }

    /// `engineio.` + the codec's code (`unknown_packet_type`, `invalid_length`, …).
    public static func engineIO(_ code: String) -> ErrorCode { ErrorCode(rawValue: "engineio." + code) }
    /// `socketio.` + the codec's code (`invalid_payload`, `illegal_attachments`, …).
    public static func socketIO(_ code: String) -> ErrorCode { ErrorCode(rawValue: "socketio." + code) }

    public static let missingAttachments: ErrorCode = "socketio.missing_attachments"
    /// Input that ends with a binary packet still waiting for attachments (`siotap decode`).
    public static let incomplete: ErrorCode = "socketio.incomplete"
    /// Bytes that stopped following RFC 6455 framing: relayed, no longer decoded.
    public static let webSocketProtocolError: ErrorCode = "websocket.protocol_error"
    public static let upstreamUnreachable: ErrorCode = "proxy.upstream_unreachable"
    public static let upstreamStatus: ErrorCode = "proxy.upstream_status"
    public static let clientAborted: ErrorCode = "proxy.client_aborted"
    public static let messageTooLarge: ErrorCode = "proxy.message_too_large"
    /// A client's TLS handshake with the proxy failed (it does not trust the certificate, it
    /// spoke plain HTTP, …); recorded without a conn.
    public static let tlsHandshake: ErrorCode = "proxy.tls_handshake"
    /// The TLS handshake with the upstream failed: its certificate expired, is for other names,
    /// or is signed by no trusted CA (the message says which); the client got a 502.
    public static let upstreamTLS: ErrorCode = "proxy.upstream_tls"
    /// A forward proxy's CONNECT that could not be a tunnel: no `host:port`, a host that cannot be
    /// reached (the client got a 502), or bytes through it that are neither TLS nor HTTP.
    public static let badTunnel: ErrorCode = "proxy.bad_tunnel"
    /// Forward mode refused a remote client's request to this machine's loopback or link-local
    /// addresses, or to siotap itself.
    public static let forbiddenTarget: ErrorCode = "proxy.forbidden_target"
    /// `siotap import`: a WebSocket read from the middle, its upgrade not in the capture (its
    /// URL, headers and sid unknown; the message says how its Engine.IO version was decided).
    public static let noHandshake: ErrorCode = "pcap.no_handshake"
}
