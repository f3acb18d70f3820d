/// The Socket.IO protocol revision: 4 (socket.io 1.x/2.x, over Engine.IO 3) or 5 (socket.io 3.x and
/// later, over Engine.IO 4).
public enum SocketIOVersion: Int, Sendable, Hashable, Codable, CaseIterable {
    case v4 = 4
    case v5 = 5

    /// The Socket.IO revision each Engine.IO generation carries.
    public init(engine: EngineIOVersion) { self = engine == .v3 ? .v4 : .v5 }
}

/// The Socket.IO packet types. Type 4 is called ERROR in protocol v4.
public enum SocketPacketType: UInt8, Sendable, Hashable, Codable, CaseIterable {
    case connect = 0
    case disconnect = 1
    case event = 2
    case ack = 3
    case connectError = 4
    case binaryEvent = 5
    case binaryAck = 6

    /// The name the capture format uses: `CONNECT`, `BINARY_EVENT`, …
    public var name: String {
        switch self {
        case .connect: "CONNECT"
        case .disconnect: "DISCONNECT"
        case .event: "EVENT"
        case .ack: "ACK"
        case .connectError: "CONNECT_ERROR"
        case .binaryEvent: "BINARY_EVENT"
        case .binaryAck: "BINARY_ACK"
        }
    }

    public init?(name: String) {
        guard let type = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = type
    }

    public var isBinary: Bool { self == .binaryEvent || self == .binaryAck }
    public var isEvent: Bool { self == .event || self == .binaryEvent }
    public var isAck: Bool { self == .ack || self == .binaryAck }
}

/// One Socket.IO packet, with its binary attachments joined.
public struct SocketPacket: Sendable, Hashable {
    public var type: SocketPacketType
    /// The namespace, `/` by default. For protocol v4 a `?query` is split off into ``query``.
    public var namespace: String
    /// Protocol v4 only: the query a client appended to a namespace in CONNECT (`/admin?token=1`).
    public var query: String?
    /// The ack id, when the sender wants an acknowledgement (events) or answers one (acks).
    public var ackID: UInt64?
    /// The JSON payload: the CONNECT/CONNECT_ERROR data, or the event/ack array. Binary attachments
    /// stand in place of their placeholders as ``JSONValue/binary(_:)``.
    public var data: JSONValue?
    /// The binary attachments in wire order (`num` 0, 1, …).
    public var attachments: [[UInt8]]

    public init(
        _ type: SocketPacketType,
        namespace: String = "/",
        query: String? = nil,
        ackID: UInt64? = nil,
        data: JSONValue? = nil,
        attachments: [[UInt8]] = []
    ) {
        self.type = type
        self.namespace = namespace
        self.query = query
        self.ackID = ackID
        self.data = data
        self.attachments = attachments
    }

    /// An event: `["name", args...]`.
    public static func event(_ name: String, _ arguments: [JSONValue] = [], namespace: String = "/", ackID: UInt64? = nil) -> SocketPacket {
        SocketPacket(.event, namespace: namespace, ackID: ackID, data: .array([.string(name)] + arguments))
    }

    /// The event name: the first element of an event's array, when it is a string (or a number,
    /// which the protocol allows).
    public var eventName: String? {
        guard type.isEvent, case .array(let items)? = data, let first = items.first else { return nil }
        switch first {
        case .string(let name): return name.value
        case .number(let number): return number.literal
        default: return nil
        }
    }

    /// An event's arguments after its name, or an ack's arguments.
    public var arguments: [JSONValue] {
        guard case .array(let items)? = data else { return [] }
        return type.isEvent ? Array(items.dropFirst()) : type.isAck ? items : []
    }
}
