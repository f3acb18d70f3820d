/// Socket.IO packets of the msgpack parser (`socket.io-msgpack-parser`, python-socketio's
/// `serializer="msgpack"`): each packet is one msgpack map, `type`, `nsp`, `data` and, for acks
/// and events that want one, `id`, sent as one binary message. Binary values sit in `data` as
/// msgpack `bin`: there are no attachments and no BINARY_ types.
public enum SocketIOMsgPack {
    /// A packet from its bytes. Lenient where an observer must be: a `nil` `data` is taken as no
    /// data, and map entries come in any order.
    public static func decode(_ bytes: [UInt8]) throws(SocketIOError) -> SocketPacket {
        let value: MsgPackValue
        do { value = try MsgPackCodec.decode(bytes) } catch {
            throw SocketIOError(.invalidMsgPack, excerpt: error.description)
        }
        guard case .map = value, let typeNumber = value["type"]?.intValue,
            typeNumber >= 0, typeNumber <= 4, let type = SocketPacketType(rawValue: UInt8(typeNumber))
        else { throw SocketIOError(.unknownPacketType, excerpt: "\(value["type"]?.jsonValue.jsonText ?? "no type")") }
        guard let namespace = value["nsp"]?.stringValue else { throw SocketIOError(.invalidPayload, excerpt: "no nsp") }
        var ackID: UInt64?
        if let id = value["id"], id != .null {
            guard case .uint(let number) = id else { throw SocketIOError(.invalidAckID, excerpt: id.jsonValue.jsonText) }
            ackID = number
        }
        var data: JSONValue?
        if let given = value["data"], given != MsgPackValue.null { data = given.jsonValue }
        let valid = switch type {
        case .connect, .connectError: data == nil || data?.objectValue != nil || (type == .connectError && data?.stringValue != nil)
        case .disconnect: data == nil
        case .event, .binaryEvent: data?.arrayValue.map { !$0.isEmpty } ?? false
        case .ack, .binaryAck: data?.arrayValue != nil
        }
        guard valid else { throw SocketIOError(.invalidPayload, excerpt: data?.jsonText ?? "no data") }
        return SocketPacket(type, namespace: namespace, ackID: ackID, data: data)
    }

    /// The packet's bytes, entries in the order the reference encoders write them.
    public static func encode(_ packet: SocketPacket) -> [UInt8] {
        var entries: [MsgPackValue.Entry] = [
            .init(key: .string("type"), value: .uint(UInt64(packet.type.isEvent ? 2 : packet.type.isAck ? 3 : packet.type.rawValue))),
            .init(key: .string("data"), value: packet.data?.msgPackValue ?? .null),
            .init(key: .string("nsp"), value: .string(packet.namespace)),
        ]
        if let id = packet.ackID { entries.append(.init(key: .string("id"), value: .uint(id))) }
        return MsgPackCodec.encode(.map(entries))
    }

    /// Whether these bytes start like a msgpack Socket.IO packet (a map): how a session's parser is
    /// told from its first packet.
    public static func looksLikePacket(_ bytes: [UInt8]) -> Bool {
        guard let first = bytes.first else { return false }
        return (0x80...0x8F).contains(first) || first == 0xDE || first == 0xDF
    }
}
