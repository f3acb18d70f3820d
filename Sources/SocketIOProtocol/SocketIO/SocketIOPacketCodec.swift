/// One session's Socket.IO packets to and from Engine.IO messages, with either parser: the JSON
/// text and its binary attachments (a packet may take several messages), or one msgpack map per
/// binary message. What the built-in server and siotap's client speak.
public struct SocketIOPacketCodec: Sendable {
    public let parser: SocketIOParser
    private var decoder: SocketIODecoder

    public init(parser: SocketIOParser, version: SocketIOVersion) {
        self.parser = parser
        decoder = SocketIODecoder(version: version)
    }

    /// The packet a message completes, or nil while a JSON binary packet waits for attachments.
    public mutating func decode(_ payload: EnginePacket.Payload) throws(SocketIOError) -> SocketPacket? {
        switch (parser, payload) {
        case (.json, .text(let text)): return try decoder.decode(text: text)
        case (.json, .binary(let bytes)): return try decoder.decode(binary: bytes)
        case (.json, .none): return try decoder.decode(text: "")
        case (.msgpack, .binary(let bytes)): return try SocketIOMsgPack.decode(bytes)
        case (.msgpack, _): throw SocketIOError(.invalidMsgPack, excerpt: "a text message in a msgpack session")
        }
    }

    /// The messages a packet takes.
    public func encode(_ packet: SocketPacket) -> [EnginePacket] {
        switch parser {
        case .json:
            let (text, attachments) = SocketIOCodec.encode(packet)
            return [.message(text)] + attachments.map { EnginePacket.message($0) }
        case .msgpack:
            return [.message(SocketIOMsgPack.encode(packet))]
        }
    }
}
