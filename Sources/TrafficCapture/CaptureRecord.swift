@_exported import SocketIOProtocol

/// One line of a capture file (format v1).
///
/// Every record has a ``seq`` (1, 2, 3… in file order), a ``ts`` (RFC 3339 UTC with microseconds),
/// its ``kind`` and, where a client connection applies, the recorder's ``conn`` id, which stays the
/// same across the polling-to-websocket upgrade. The fields of each kind follow, flattened into the
/// same JSON object. `docs/capture-format.md` describes every field.
public struct CaptureRecord: Sendable, Hashable, Codable {
    public var seq: Int
    public var ts: String
    public var conn: String?
    public var body: Body

    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        case session, engine, packet, jwt, close, error
    }

    public enum Body: Sendable, Hashable {
        case session(SessionRecord)
        case engine(EngineRecord)
        case packet(PacketRecord)
        case jwt(JWTRecord)
        case close(CloseRecord)
        case error(ErrorRecord)
    }

    public init(seq: Int = 0, ts: String = "", conn: String? = nil, _ body: Body) {
        self.seq = seq
        self.ts = ts
        self.conn = conn
        self.body = body
    }

    public var kind: Kind {
        switch body {
        case .session: .session
        case .engine: .engine
        case .packet: .packet
        case .jwt: .jwt
        case .close: .close
        case .error: .error
        }
    }

    private enum CodingKeys: String, CodingKey { case seq, ts, kind, conn }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(seq, forKey: .seq)
        try container.encode(ts, forKey: .ts)
        try container.encode(kind, forKey: .kind)
        try container.encodeIfPresent(conn, forKey: .conn)
        switch body {
        case .session(let record): try record.encode(to: encoder)
        case .engine(let record): try record.encode(to: encoder)
        case .packet(let record): try record.encode(to: encoder)
        case .jwt(let record): try record.encode(to: encoder)
        case .close(let record): try record.encode(to: encoder)
        case .error(let record): try record.encode(to: encoder)
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        seq = try container.decode(Int.self, forKey: .seq)
        ts = try container.decode(String.self, forKey: .ts)
        conn = try container.decodeIfPresent(String.self, forKey: .conn)
        switch try container.decode(Kind.self, forKey: .kind) {
        case .session: body = .session(try SessionRecord(from: decoder))
        case .engine: body = .engine(try EngineRecord(from: decoder))
        case .packet: body = .packet(try PacketRecord(from: decoder))
        case .jwt: body = .jwt(try JWTRecord(from: decoder))
        case .close: body = .close(try CloseRecord(from: decoder))
        case .error: body = .error(try ErrorRecord(from: decoder))
        }
    }
}

/// Which way a frame went.
public enum Direction: String, Sendable, Hashable, Codable {
    case clientToServer = "c2s"
    case serverToClient = "s2c"

    public var reversed: Direction { self == .clientToServer ? .serverToClient : .clientToServer }
}

/// A new Engine.IO session.
public struct SessionRecord: Sendable, Hashable, Codable {
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

/// An Engine.IO control packet (anything but `message`).
public struct EngineRecord: Sendable, Hashable, Codable {
    public var dir: Direction
    public var transport: EngineTransport
    /// `open`, `close`, `ping`, `pong`, `upgrade` or `noop`.
    public var type: String
    /// The packet's data: the open packet's JSON as parsed (wire text kept), or a string (`probe`).
    public var data: JSONValue?

    public init(dir: Direction, transport: EngineTransport, type: String, data: JSONValue? = nil) {
        self.dir = dir
        self.transport = transport
        self.type = type
        self.data = data
    }
}

/// One Socket.IO packet, attachments joined.
public struct PacketRecord: Sendable, Hashable, Codable {
    public var dir: Direction
    public var transport: EngineTransport
    /// `CONNECT`, `DISCONNECT`, `EVENT`, `ACK`, `CONNECT_ERROR`, `BINARY_EVENT`, `BINARY_ACK`.
    public var type: String
    public var nsp: String
    /// Protocol v4: the query on a namespace in CONNECT.
    public var query: String?
    /// The ack id.
    public var id: UInt64?
    /// Events: the name.
    public var event: String?
    /// Events: the arguments after the name; acks: the ack's arguments. Binary attachments stand
    /// in place as `{"$binary":"<base64>"}`.
    public var args: [JSONValue]?
    /// CONNECT and CONNECT_ERROR: the payload.
    public var data: JSONValue?
    /// The packet string exactly as on the wire (without the Engine.IO `4`).
    public var raw: String
    /// The binary attachments in order, base64.
    public var attachments: [String]?
    /// Acks: milliseconds since the event with this id went the other way (set by the proxy).
    public var latencyMilliseconds: Double?

    private enum CodingKeys: String, CodingKey {
        case dir, transport, type, nsp, query, id, event, args, data, raw, attachments
        case latencyMilliseconds = "latency_ms"
    }

    public init(
        dir: Direction, transport: EngineTransport, type: String, nsp: String, query: String? = nil, id: UInt64? = nil,
        event: String? = nil, args: [JSONValue]? = nil, data: JSONValue? = nil, raw: String,
        attachments: [String]? = nil, latencyMilliseconds: Double? = nil
    ) {
        self.dir = dir
        self.transport = transport
        self.type = type
        self.nsp = nsp
        self.query = query
        self.id = id
        self.event = event
        self.args = args
        self.data = data
        self.raw = raw
        self.attachments = attachments
        self.latencyMilliseconds = latencyMilliseconds
    }

    /// Reads `{"$binary": …}` stand-ins back into binary values when the record has attachments
    /// (without attachments such an object is the sender's own JSON and stays as it is).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        dir = try container.decode(Direction.self, forKey: .dir)
        transport = try container.decode(EngineTransport.self, forKey: .transport)
        type = try container.decode(String.self, forKey: .type)
        nsp = try container.decode(String.self, forKey: .nsp)
        query = try container.decodeIfPresent(String.self, forKey: .query)
        id = try container.decodeIfPresent(UInt64.self, forKey: .id)
        event = try container.decodeIfPresent(String.self, forKey: .event)
        args = try container.decodeIfPresent([JSONValue].self, forKey: .args)
        data = try container.decodeIfPresent(JSONValue.self, forKey: .data)
        raw = try container.decode(String.self, forKey: .raw)
        attachments = try container.decodeIfPresent([String].self, forKey: .attachments)
        latencyMilliseconds = try container.decodeIfPresent(Double.self, forKey: .latencyMilliseconds)
        if attachments != nil {
            args = args?.map(\.restoringBinary)
            data = data?.restoringBinary
        }
    }

    /// The record of a decoded packet; `raw` is its wire string.
    public init(_ packet: SocketPacket, raw: String, dir: Direction, transport: EngineTransport) {
        self.init(dir: dir, transport: transport, type: packet.type.name, nsp: packet.namespace, query: packet.query, id: packet.ackID, raw: raw)
        if packet.type.isEvent {
            event = packet.eventName
            args = packet.arguments
        } else if packet.type.isAck {
            args = packet.arguments
        } else {
            data = packet.data
        }
        if !packet.attachments.isEmpty { attachments = packet.attachments.map { Base64.encode($0) } }
    }
}

extension JSONValue {
    /// `{"$binary":"<base64>"}` back to ``JSONValue/binary(_:)``, at any depth.
    var restoringBinary: JSONValue {
        switch self {
        case .object(let object):
            if object.members.count == 1, object.members[0].key.value == "$binary",
                let text = object.members[0].value.stringValue, let bytes = Base64.decode(text)
            {
                return .binary(bytes)
            }
            return .object(JSONObject(object.members.map { .init(key: $0.key, value: $0.value.restoringBinary) }))
        case .array(let items): return .array(items.map(\.restoringBinary))
        default: return self
        }
    }
}

/// A token seen in a handshake, and what siotap made of it.
public struct JWTRecord: Sendable, Hashable, Codable {
    /// `auth.<field>`, `query.<name>`, `header.authorization` or `cookie.<name>`.
    public var source: String
    /// For `auth.*`: the namespace of the CONNECT.
    public var nsp: String?
    public var header: JSONValue
    public var claims: JSONValue
    public var verified: Bool?
    public var reason: String?
    public var exp: String?
    public var iat: String?
    public var nbf: String?
    public var expiresInSeconds: Double?
    public var warnings: [String]?

    public init(
        source: String, nsp: String? = nil, header: JSONValue, claims: JSONValue, verified: Bool?, reason: String? = nil,
        exp: String? = nil, iat: String? = nil, nbf: String? = nil, expiresInSeconds: Double? = nil, warnings: [String]? = nil
    ) {
        self.source = source
        self.nsp = nsp
        self.header = header
        self.claims = claims
        self.verified = verified
        self.reason = reason
        self.exp = exp
        self.iat = iat
        self.nbf = nbf
        self.expiresInSeconds = expiresInSeconds
        self.warnings = warnings
    }

    private enum CodingKeys: String, CodingKey {
        case source, nsp, header, claims, verified, reason, exp, iat, nbf, warnings
        case expiresInSeconds = "expires_in_s"
    }

    // `verified` is written even when null: null means "no key given", which readers must see.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(source, forKey: .source)
        try container.encodeIfPresent(nsp, forKey: .nsp)
        try container.encode(header, forKey: .header)
        try container.encode(claims, forKey: .claims)
        if let verified { try container.encode(verified, forKey: .verified) } else { try container.encodeNil(forKey: .verified) }
        try container.encodeIfPresent(reason, forKey: .reason)
        try container.encodeIfPresent(exp, forKey: .exp)
        try container.encodeIfPresent(iat, forKey: .iat)
        try container.encodeIfPresent(nbf, forKey: .nbf)
        try container.encodeIfPresent(expiresInSeconds, forKey: .expiresInSeconds)
        try container.encodeIfPresent(warnings, forKey: .warnings)
    }
}

/// The end of a connection.
public struct CloseRecord: Sendable, Hashable, Codable {
    public enum Side: String, Sendable, Hashable, Codable { case client, server, proxy }
    public var by: Side
    public var reason: String

    public init(by: Side, reason: String) {
        self.by = by
        self.reason = reason
    }
}

/// Something that could not be decoded; the traffic still flowed.
public struct ErrorRecord: Sendable, Hashable, Codable {
    public var dir: Direction?
    /// A stable code: `engineio.unknown_packet_type`, `socketio.invalid_payload`, …
    public var code: String
    public var message: String
    /// What could not be decoded: text as it was, binary as base64 prefixed `base64:`.
    public var raw: String?

    public init(dir: Direction?, code: String, message: String, raw: String? = nil) {
        self.dir = dir
        self.code = code
        self.message = message
        self.raw = raw
    }
}
