/// Socket.IO packets of the msgpack parser (`socket.io-msgpack-parser`, python-socketio's
/// `serializer="msgpack"`): each packet is one msgpack map, `type`, `nsp`, `data` and, for acks
/// and events that want one, `id`, sent as one binary message. Binary values sit in `data` as
/// msgpack `bin`: there are no attachments and no BINARY_ types.
public enum SocketIOMsgPack {
    /// A packet from its bytes. Lenient where an observer must be: a `nil` `data` is taken as no
    /// data, and map entries come in any order.
    public static func decode(_ bytes: [UInt8]) throws(SocketIOError) -> SocketPacket {
        var type: Int?
        var namespace: String?
        var ackID: UInt64?
        var data: JSONValue?
        var reader = MsgPackCodec.Reader(bytes: bytes)
        do {
            // The top map read entry by entry: `data` straight into JSON, the rest as values.
            guard let first = bytes.first, (0x80...0x8F).contains(first) || first == 0xDE || first == 0xDF else {
                let value = try MsgPackCodec.decode(bytes)
                throw SocketIOError(.unknownPacketType, excerpt: "not a map: \(value.jsonValue.jsonText.prefix(40))")
            }
            reader.index = 1
            let count = first <= 0x8F ? Int(first & 0x0F) : Int(try reader.unsigned(first == 0xDE ? 2 : 4))
            for _ in 0..<count {
                let key = try reader.value(depth: 1)
                switch key.stringValue {
                case "data":
                    // A nil `data` is no data (python-socketio always writes the key).
                    let value = try reader.json(depth: 1)
                    if case .null = value { data = nil } else { data = value }
                case "type":
                    type = try reader.value(depth: 1).intValue
                case "nsp":
                    namespace = try reader.value(depth: 1).stringValue
                case "id":
                    let id = try reader.value(depth: 1)
                    switch id {
                    case .null: break
                    case .uint(let number): ackID = number
                    default: throw SocketIOError(.invalidAckID, excerpt: id.jsonValue.jsonText)
                    }
                default:
                    _ = try reader.value(depth: 1)
                }
            }
            guard reader.index == bytes.count else { throw MsgPackError(.trailingBytes, offset: reader.index) }
        } catch let error as MsgPackError {
            throw SocketIOError(.invalidMsgPack, excerpt: error.description)
        } catch let error as SocketIOError {
            throw error
        } catch {
            throw SocketIOError(.invalidMsgPack, excerpt: "\(error)")
        }
        guard let typeNumber = type, typeNumber >= 0, typeNumber <= 4, let packetType = SocketPacketType(rawValue: UInt8(typeNumber)) else {
            throw SocketIOError(.unknownPacketType, excerpt: type.map(String.init) ?? "no type")
        }
        guard let namespace else { throw SocketIOError(.invalidPayload, excerpt: "no nsp") }
        let valid = switch packetType {
        case .connect, .connectError: data == nil || data?.objectValue != nil || (packetType == .connectError && data?.stringValue != nil)
        case .disconnect: data == nil
        case .event, .binaryEvent: data?.arrayValue.map { !$0.isEmpty } ?? false
        case .ack, .binaryAck: data?.arrayValue != nil
        }
        guard valid else { throw SocketIOError(.invalidPayload, excerpt: data?.jsonText ?? "no data") }
        return SocketPacket(packetType, namespace: namespace, ackID: ackID, data: data)
    }

    /// The packet's bytes, entries in the order the reference encoders write them.
    public static func encode(_ packet: SocketPacket) -> [UInt8] {
        var out: [UInt8] = [packet.ackID == nil ? 0x83 : 0x84]
        out.reserveCapacity(64)
        MsgPackCodec.write(.string("type"), to: &out)
        MsgPackCodec.write(.uint(UInt64(packet.type.isEvent ? 2 : packet.type.isAck ? 3 : packet.type.rawValue)), to: &out)
        MsgPackCodec.write(.string("data"), to: &out)
        if let data = packet.data { MsgPackCodec.write(json: data, to: &out) } else { out.append(0xC0) }
        MsgPackCodec.write(.string("nsp"), to: &out)
        MsgPackCodec.write(.string(packet.namespace), to: &out)
        if let id = packet.ackID {
            MsgPackCodec.write(.string("id"), to: &out)
            MsgPackCodec.write(.uint(id), to: &out)
        }
        return out
    }

    /// Whether these bytes start like a msgpack Socket.IO packet (a map): how a session's parser is
    /// told from its first packet.
    public static func looksLikePacket(_ bytes: [UInt8]) -> Bool {
        guard let first = bytes.first else { return false }
        return (0x80...0x8F).contains(first) || first == 0xDE || first == 0xDF
    }
}
