public import SocketIOProtocol

/// One Socket.IO packet, attachments joined.
public struct PacketRecord: Sendable, Hashable, Decodable {
    public var dir: Direction
    public var transport: EngineTransport
    /// `CONNECT`, `DISCONNECT`, `EVENT`, `ACK`, `CONNECT_ERROR`, `BINARY_EVENT`, `BINARY_ACK` in the file.
    public var type: SocketPacketType
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
    /// Connection-state recovery: on a client's CONNECT that asks for a session back (its payload
    /// has `pid` and `offset`), the conn whose session that was, when the recorder saw it.
    public var recovers: String?
    /// Connection-state recovery: on the server's answer to such a CONNECT, whether it gave the
    /// session back (its `pid` is the one asked for).
    public var recovered: Bool?

    private enum CodingKeys: String, CodingKey {
        case dir, transport, type, nsp, query, id, event, args, data, raw, attachments, recovers, recovered
        case latencyMilliseconds = "latency_ms"
    }

    public init(
        dir: Direction, transport: EngineTransport, type: SocketPacketType, nsp: String, query: String? = nil, id: UInt64? = nil,
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
        let name = try container.decode(String.self, forKey: .type)
        guard let type = SocketPacketType(name: name) else {
            throw DecodingError.dataCorruptedError(forKey: .type, in: container, debugDescription: "unknown Socket.IO packet type \(name)")
        }
        self.type = type
        nsp = try container.decode(String.self, forKey: .nsp)
        query = try container.decodeIfPresent(String.self, forKey: .query)
        id = try container.decodeIfPresent(UInt64.self, forKey: .id)
        event = try container.decodeIfPresent(String.self, forKey: .event)
        args = try container.decodeIfPresent([JSONValue].self, forKey: .args)
        data = try container.decodeIfPresent(JSONValue.self, forKey: .data)
        raw = try container.decode(String.self, forKey: .raw)
        attachments = try container.decodeIfPresent([String].self, forKey: .attachments)
        latencyMilliseconds = try container.decodeIfPresent(Double.self, forKey: .latencyMilliseconds)
        recovers = try container.decodeIfPresent(String.self, forKey: .recovers)
        recovered = try container.decodeIfPresent(Bool.self, forKey: .recovered)
        if attachments != nil {
            args = args?.map(\.restoringBinary)
            data = data?.restoringBinary
        }
    }


    /// The record of a decoded packet; `raw` is its wire string.
    public init(_ packet: SocketPacket, raw: String, dir: Direction, transport: EngineTransport) {
        self.init(dir: dir, transport: transport, type: packet.type, nsp: packet.namespace, query: packet.query, id: packet.ackID, raw: raw)
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

extension SocketPacket {
    /// The packet a record describes, binary values in place (what replay sends, what a fault
    /// rewrites).
    public init(record: PacketRecord) {
        var data = record.data
        if record.type.isEvent { data = .array([.string(record.event ?? "")] + (record.args ?? [])) }
        if record.type.isAck { data = .array(record.args ?? []) }
        self.init(record.type, namespace: record.nsp, query: record.query, ackID: record.id, data: data)
    }
}

extension JSONValue {
    /// `{"$binary":"<base64>"}` back to ``JSONValue/binary(_:)``, at any depth.
    public var restoringBinary: JSONValue {
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
