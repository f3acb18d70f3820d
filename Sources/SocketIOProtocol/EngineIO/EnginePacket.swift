/// The Engine.IO protocol generation: 3 (socket.io 1.x/2.x) or 4 (socket.io 3.x and later).
public enum EngineIOVersion: Int, Sendable, Hashable, Codable, CaseIterable {
    case v3 = 3
    case v4 = 4
}

/// The Engine.IO packet types, one ASCII digit on the wire.
public enum EnginePacketType: UInt8, Sendable, Hashable, Codable, CaseIterable {
    case open = 0
    case close = 1
    case ping = 2
    case pong = 3
    case message = 4
    case upgrade = 5
    case noop = 6

    public var name: String {
        switch self {
        case .open: "open"
        case .close: "close"
        case .ping: "ping"
        case .pong: "pong"
        case .message: "message"
        case .upgrade: "upgrade"
        case .noop: "noop"
        }
    }

    public init?(name: String) {
        guard let type = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = type
    }

    init?(digit: UInt8) {
        guard digit >= UInt8(ascii: "0") else { return nil }
        self.init(rawValue: digit - UInt8(ascii: "0"))
    }

    var digit: UInt8 { UInt8(ascii: "0") + rawValue }
}

/// One Engine.IO packet.
public struct EnginePacket: Sendable, Hashable {
    /// What a packet carries after its type digit.
    public enum Payload: Sendable, Hashable {
        case none
        case text(String)
        /// Binary data; only `message` packets carry it.
        case binary([UInt8])
    }

    public var type: EnginePacketType
    public var payload: Payload

    public init(_ type: EnginePacketType, _ payload: Payload = .none) {
        self.type = type
        self.payload = payload
    }

    public static func message(_ text: String) -> EnginePacket { EnginePacket(.message, .text(text)) }
    public static func message(_ bytes: [UInt8]) -> EnginePacket { EnginePacket(.message, .binary(bytes)) }

    public var text: String? {
        if case .text(let text) = payload { return text }
        return nil
    }

    public var isBinary: Bool {
        if case .binary = payload { return true }
        return false
    }
}

/// One WebSocket message: Engine.IO sends exactly one packet per message.
public enum WebSocketMessage: Sendable, Hashable {
    case text(String)
    case binary([UInt8])
}
