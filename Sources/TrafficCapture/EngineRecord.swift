public import SocketIOProtocol

/// An Engine.IO control packet (anything but `message`).
public struct EngineRecord: Sendable, Hashable, Decodable {
    public var dir: Direction
    public var transport: EngineTransport
    /// `open`, `close`, `ping`, `pong`, `upgrade` or `noop` in the file.
    public var type: EnginePacketType
    /// The packet's data: the open packet's JSON as parsed (wire text kept), or a string (`probe`).
    public var data: JSONValue?

    public init(dir: Direction, transport: EngineTransport, type: EnginePacketType, data: JSONValue? = nil) {
        self.dir = dir
        self.transport = transport
        self.type = type
        self.data = data
    }

    private enum CodingKeys: String, CodingKey { case dir, transport, type, data }


    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        dir = try container.decode(Direction.self, forKey: .dir)
        transport = try container.decode(EngineTransport.self, forKey: .transport)
        let name = try container.decode(String.self, forKey: .type)
        guard let type = EnginePacketType(name: name) else {
            throw DecodingError.dataCorruptedError(forKey: .type, in: container, debugDescription: "unknown Engine.IO packet type \(name)")
        }
        self.type = type
        data = try container.decodeIfPresent(JSONValue.self, forKey: .data)
    }
}
