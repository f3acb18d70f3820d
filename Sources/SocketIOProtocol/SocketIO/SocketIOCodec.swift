/// Encodes and decodes Socket.IO packet strings (`<type>[<n>-][<nsp>,][<id>][<json>]`).
///
/// Decoding follows socket.io-parser: 3.4.x rules for protocol v4, 4.2.x rules for v5.
/// Attachments are joined by ``SocketIODecoder``; this type handles one string at a time.
public enum SocketIOCodec {
    /// socket.io-parser's default limit on attachments per packet.
    public static let defaultMaxAttachments = 10
    /// The most a binary packet's attachments may weigh together while they are joined: as much as
    /// one message may (the proxy's default `--max-message-size`). Without it, ten attachments of
    /// that size each would be held per direction of every conn.
    public static let defaultMaxAttachmentBytes = 64 << 20

    /// Event names a v5 client or server may not send.
    static let reservedEvents: Set<String> = [
        "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener",
    ]

    /// The packet header and payload of one string; for binary types the placeholders are still in
    /// ``SocketPacket/data`` and the returned count says how many attachments follow.
    public static func decodeString(
        _ text: String,
        version: SocketIOVersion,
        maxAttachments: Int = defaultMaxAttachments
    ) throws(SocketIOError) -> (packet: SocketPacket, attachmentCount: Int) {
        var text = text
        return try text.withUTF8Bytes { bytes throws(SocketIOError) in
            try decode(bytes, version: version, maxAttachments: maxAttachments)
        }
    }

    private static func decode(
        _ bytes: UnsafeBufferPointer<UInt8>,
        version: SocketIOVersion,
        maxAttachments: Int
    ) throws(SocketIOError) -> (packet: SocketPacket, attachmentCount: Int) {
        func fail(_ code: SocketIOError.Code, at offset: Int, json: JSONParseError? = nil) -> SocketIOError {
            SocketIOError(code, offset: offset, excerpt: excerpt(bytes), jsonError: json)
        }
        guard let first = bytes.first else { throw fail(.emptyPacket, at: 0) }
        guard first >= UInt8(ascii: "0"), let type = SocketPacketType(rawValue: first - UInt8(ascii: "0")) else {
            throw fail(.unknownPacketType, at: 0)
        }
        var index = 1
        var attachmentCount = 0
        if type.isBinary {
            let start = index
            while index < bytes.count, bytes[index] != UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, index > start, index - start <= 10 else { throw fail(.illegalAttachments, at: start) }
            for position in start..<index {
                let digit = bytes[position] &- UInt8(ascii: "0")
                guard digit < 10 else { throw fail(.illegalAttachments, at: position) }
                attachmentCount = attachmentCount * 10 + Int(digit)
            }
            guard attachmentCount <= maxAttachments else { throw fail(.tooManyAttachments, at: start) }
            index += 1
        }

        var namespace = "/"
        var query: String?
        if index < bytes.count, bytes[index] == UInt8(ascii: "/") {
            let start = index
            while index < bytes.count, bytes[index] != UInt8(ascii: ",") { index += 1 }
            var end = index
            if version == .v4, let mark = bytes[start..<end].firstIndex(of: UInt8(ascii: "?")) {
                query = String(decoding: UnsafeBufferPointer(rebasing: bytes[(mark + 1)..<end]), as: UTF8.self)
                end = mark
            }
            namespace = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
            if index < bytes.count { index += 1 }  // the comma
        }

        var ackID: UInt64?
        if index < bytes.count, bytes[index] &- UInt8(ascii: "0") < 10 {
            let start = index
            var id: UInt64 = 0
            while index < bytes.count, bytes[index] &- UInt8(ascii: "0") < 10 {
                let (times10, overflow1) = id.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = times10.addingReportingOverflow(UInt64(bytes[index] - UInt8(ascii: "0")))
                guard !overflow1, !overflow2 else { throw fail(.invalidAckID, at: start) }
                id = sum
                index += 1
            }
            ackID = id
        }

        var data: JSONValue?
        if index < bytes.count {
            do {
                data = try JSONValue.parse(utf8: UnsafeBufferPointer(rebasing: bytes[index...]))
            } catch {
                throw fail(.invalidPayload, at: index + error.offset, json: error)
            }
            guard isPayloadValid(type, data!, version: version) else { throw fail(.invalidPayload, at: index) }
        }  // socket.io-parser validates only a payload that is present: `2` alone decodes.
        let packet = SocketPacket(type, namespace: namespace, query: query, ackID: ackID, data: data)
        return (packet, attachmentCount)
    }

    /// Bit n set when a reserved name is n bytes long.
    private static let reservedLengths: UInt64 = reservedEvents.reduce(0) { $0 | 1 << $1.utf8.count }

    /// Most event names are not as long as any reserved one, which decides it without hashing.
    private static func isReserved(_ name: JSONString) -> Bool {
        let length = name.valueUTF8Count
        return length < 64 && reservedLengths & (1 << length) != 0 && reservedEvents.contains(name.value)
    }

    private static func isPayloadValid(_ type: SocketPacketType, _ payload: JSONValue, version: SocketIOVersion) -> Bool {
        switch (type, version) {
        case (.disconnect, _):
            return false
        case (.connect, .v5):
            return payload.objectValue != nil
        case (.connect, .v4):
            // 3.4.x: `typeof payload === "object"`, which arrays and null pass.
            switch payload {
            case .object, .array, .null: return true
            default: return false
            }
        case (.connectError, .v5):
            return payload.objectValue != nil || payload.stringValue != nil
        case (.connectError, .v4):
            switch payload {
            case .object, .array, .null, .string: return true
            default: return false
            }
        case (.event, _), (.binaryEvent, _):
            guard case .array(let items) = payload, let first = items.first else { return false }
            switch first {
            case .number: return true
            case .string(let name): return version == .v4 || !isReserved(name)
            default: return false
            }
        case (.ack, _), (.binaryAck, _):
            return payload.arrayValue != nil
        }
    }

    /// Encodes a packet as its string and the binary attachments that follow it.
    ///
    /// Binary values anywhere in ``SocketPacket/data`` are replaced by placeholders (numbered in
    /// depth-first order) and an EVENT or ACK that holds any becomes BINARY_EVENT or BINARY_ACK.
    public static func encode(_ packet: SocketPacket) -> (text: String, attachments: [[UInt8]]) {
        // One buffer, one pass: the header is written as if no binary will come, binary values
        // become placeholders as the data is written, and only when some did (or the type was
        // binary already) is the header written again with the attachment count.
        var attachments: [[UInt8]] = []
        var out: [UInt8] = []
        out.reserveCapacity(128)
        writeHeader(packet, type: packet.type, attachmentCount: 0, to: &out)
        let headerEnd = out.count
        packet.data?.writeUTF8(to: &out, placeholdersInto: &attachments)
        if !attachments.isEmpty || packet.type.isBinary {
            var type = packet.type
            if type == .event { type = .binaryEvent }
            if type == .ack { type = .binaryAck }
            var header: [UInt8] = []
            writeHeader(packet, type: type, attachmentCount: attachments.count, to: &header)
            out.replaceSubrange(0..<headerEnd, with: header)
        }
        return (String(decoding: out, as: UTF8.self), attachments)
    }

    /// The type digit, the attachment count for binary types, the namespace and the ack id.
    private static func writeHeader(_ packet: SocketPacket, type: SocketPacketType, attachmentCount: Int, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "0") + type.rawValue)
        if type.isBinary {
            out.appendDecimal(UInt64(attachmentCount))
            out.append(UInt8(ascii: "-"))
        }
        if packet.namespace != "/" || packet.query != nil {
            out.appendUTF8(packet.namespace)
            if let query = packet.query {
                out.append(UInt8(ascii: "?"))
                out.appendUTF8(query)
            }
            out.append(UInt8(ascii: ","))
        }
        if let id = packet.ackID { out.appendDecimal(id) }
    }

    /// Replaces each placeholder with its attachment, in place: `value` holds `null` while its
    /// children change, so a tree only the decoder holds is never copied.
    static func reconstruct(_ value: inout JSONValue, attachments: [[UInt8]]) throws(SocketIOError) {
        if case .array(var items) = value {
            value = .null
            for index in items.indices { try reconstruct(&items[index], attachments: attachments) }
            value = .array(items)
        } else if case .object(var object) = value {
            if let index = try placeholderIndex(object, count: attachments.count) {
                value = .binary(attachments[index])
                return
            }
            value = .null
            for index in object.members.indices {
                try reconstruct(&object.members[index].value, attachments: attachments)
            }
            value = .object(object)
        }
    }

    /// Refuses a placeholder that names no attachment of the `count` announced, as soon as the
    /// packet's text is read (the reference parser refuses it once the attachments are in; a
    /// packet that can never be completed is better reported before it waits forever).
    static func checkPlaceholders(_ value: JSONValue, count: Int) throws(SocketIOError) {
        switch value {
        case .array(let items):
            for item in items { try checkPlaceholders(item, count: count) }
        case .object(let object):
            if try placeholderIndex(object, count: count) != nil { return }
            for member in object.members { try checkPlaceholders(member.value, count: count) }
        default:
            break
        }
    }

    /// The attachment a placeholder object stands for; nil for any other object.
    private static func placeholderIndex(_ object: JSONObject, count: Int) throws(SocketIOError) -> Int? {
        guard object.value(forKey: "_placeholder")?.boolValue == true else { return nil }
        guard let num = object.value(forKey: "num")?.numberValue, num.isInteger, let index = num.intValue, (0..<count).contains(index)
        else { throw SocketIOError(.illegalPlaceholder, excerpt: JSONValue.object(object).jsonText) }
        return index
    }
}

func excerpt(_ bytes: UnsafeBufferPointer<UInt8>, limit: Int = 64) -> String {
    excerpt(bytes[...], limit: limit)
}
