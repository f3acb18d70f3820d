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

    /// The record code of an Engine.IO codec error: named here, once, not derived from its message.
    public init(_ code: EngineIOError.Code) {
        switch code {
        case .emptyPacket: self = "engineio.empty_packet"
        case .unknownPacketType: self = "engineio.unknown_packet_type"
        case .invalidBase64: self = "engineio.invalid_base64"
        case .invalidLength: self = "engineio.invalid_payload_length"
        case .invalidBinaryPayload: self = "engineio.invalid_binary_payload"
        case .invalidUTF8: self = "engineio.invalid_utf8"
        case .emptyPayload: self = "engineio.empty_payload"
        case .unexpectedBinary: self = "engineio.unexpected_binary"
        case .invalidHandshake: self = "engineio.invalid_open_packet"
        }
    }

    /// The record code of a Socket.IO codec error.
    public init(_ code: SocketIOError.Code) {
        switch code {
        case .emptyPacket: self = "socketio.empty_packet"
        case .unknownPacketType: self = "socketio.unknown_packet_type"
        case .illegalAttachments: self = "socketio.illegal_attachments"
        case .tooManyAttachments: self = "socketio.too_many_attachments"
        case .invalidAckID: self = "socketio.invalid_ack_id"
        case .invalidPayload: self = "socketio.invalid_payload"
        case .illegalPlaceholder: self = "socketio.illegal_placeholder"
        case .plaintextWhileReconstructing: self = "socketio.text_while_reconstructing"
        case .binaryWhileNotReconstructing: self = "socketio.binary_while_not_reconstructing"
        case .invalidMsgPack: self = .invalidMsgPack
        case .attachmentsTooLarge: self = "socketio.attachments_too_large"
        }
    }

    /// Every code siotap writes in an `error` record, each named once; `docs/capture-format.md`
    /// lists the same (a test holds them together).
    public static let known: [ErrorCode] =
        EngineIOError.Code.allCases.map(ErrorCode.init) + SocketIOError.Code.allCases.map(ErrorCode.init) + [
            .missingAttachments, .incomplete, .webSocketProtocolError, .upstreamUnreachable, .upstreamStatus, .clientAborted,
            .messageTooLarge, .tlsHandshake, .upstreamTLS, .badTunnel, .forbiddenTarget, .noHandshake, .gap, .notHTTP, .inflate,
            .inflateLimit, .truncatedCapture, .captureFailed, .upgradeRefused, .messageCut, .requestCut,
        ]

    /// The msgpack parser's packet is not msgpack, or a msgpack session carried text.
    public static let invalidMsgPack: ErrorCode = "socketio.invalid_msgpack"
    public static let missingAttachments: ErrorCode = "socketio.missing_attachments"
    /// Input that ends with a binary packet still waiting for attachments (`siotap decode`).
    public static let incomplete: ErrorCode = "socketio.incomplete"
    /// A WebSocket connection that ended inside a message (a server closing on one over its
    /// limit); the message says its announced size and how much came.
    public static let messageCut: ErrorCode = "websocket.message_cut"
    /// Bytes that stopped following RFC 6455 framing: relayed, no longer decoded.
    public static let webSocketProtocolError: ErrorCode = "websocket.protocol_error"
    public static let upstreamUnreachable: ErrorCode = "proxy.upstream_unreachable"
    public static let upstreamStatus: ErrorCode = "proxy.upstream_status"
    /// The server answered before a request's body had all gone (a body over its limit); the
    /// message says the body's announced size and how much was relayed.
    public static let requestCut: ErrorCode = "proxy.request_cut"
    /// The server answered a WebSocket upgrade with something other than 101 (the message says
    /// what, `raw` holds its body); the client got that answer.
    public static let upgradeRefused: ErrorCode = "proxy.upgrade_refused"
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
    /// `siotap import`: bytes of a TCP stream that are not in the capture.
    public static let gap: ErrorCode = "pcap.gap"
    /// `siotap import`: bytes that are not HTTP where HTTP was expected.
    public static let notHTTP: ErrorCode = "pcap.http"
    /// `siotap import`: a compressed body or message that does not inflate.
    public static let inflate: ErrorCode = "pcap.inflate"
    /// `siotap import`: the inflation budget is spent.
    public static let inflateLimit: ErrorCode = "import.inflate_limit"
    /// `siotap import`: the file ends inside a frame.
    public static let truncatedCapture: ErrorCode = "pcap.truncated"
    /// `siotap import` or `sniff`: libpcap stopped reading for another reason (the message says it).
    public static let captureFailed: ErrorCode = "pcap.read_failed"
}
