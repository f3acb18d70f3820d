/// Encodes and decodes single Engine.IO packets and WebSocket messages, for both protocol versions.
///
/// Pure functions: bytes in, values out. Polling bodies are handled by ``PollingPayloadDecoder`` and
/// ``EngineIOCodec/encodePayload(_:version:binaryFraming:)``.
public enum EngineIOCodec {
    /// Decodes a packet written as text: a type digit and its data, or `b` + base64 for binary
    /// (`b` + type digit + base64 in v3).
    public static func decodePacket(text: String, version: EngineIOVersion) throws(EngineIOError) -> EnginePacket {
        var text = text
        return try text.withUTF8Bytes { bytes throws(EngineIOError) in try decodePacket(utf8: bytes[...], version: version, offset: 0, validateUTF8: false) }
    }

    static func decodePacket(
        utf8 bytes: Slice<UnsafeBufferPointer<UInt8>>,
        version: EngineIOVersion,
        offset: Int,
        validateUTF8: Bool
    ) throws(EngineIOError) -> EnginePacket {
        guard let first = bytes.first else { throw EngineIOError(.emptyPacket, offset: offset) }
        if first == UInt8(ascii: "b") {
            var rest = bytes.dropFirst()
            var type = EnginePacketType.message
            if version == .v3 {
                // v3 writes the type digit before the base64 (a message in practice, but the
                // reference parser keeps whichever type it says).
                guard let digit = rest.first, let written = EnginePacketType(digit: digit) else {
                    throw EngineIOError(.unknownPacketType, offset: offset + 1, excerpt: excerpt(bytes))
                }
                type = written
                rest = rest.dropFirst()
            }
            guard let decoded = Base64.decode(rest) else {
                throw EngineIOError(.invalidBase64, offset: offset, excerpt: excerpt(bytes))
            }
            return EnginePacket(type, .binary(decoded))
        }
        guard let type = EnginePacketType(digit: first) else {
            throw EngineIOError(.unknownPacketType, offset: offset, excerpt: excerpt(bytes))
        }
        let data = bytes.dropFirst()
        if data.isEmpty { return EnginePacket(type) }
        if validateUTF8 {
            guard let text = String(validating: data, as: UTF8.self) else {
                throw EngineIOError(.invalidUTF8, offset: offset, excerpt: excerpt(bytes))
            }
            return EnginePacket(type, .text(text))
        }
        return EnginePacket(type, .text(String(decoding: data, as: UTF8.self)))
    }

    /// The text form of a packet: its type digit and data. Binary is written as `b` + base64
    /// (v4, always a message) or `b` + type digit + base64 (v3), as polling and `b64` WebSocket
    /// sessions carry it.
    public static func encodeText(_ packet: EnginePacket, version: EngineIOVersion) -> String {
        switch packet.payload {
        case .none: String(UnicodeScalar(packet.type.digit))
        case .text(let text): String(UnicodeScalar(packet.type.digit)) + text
        case .binary(let bytes): (version == .v3 ? "b" + String(UnicodeScalar(packet.type.digit)) : "b") + Base64.encode(bytes)
        }
    }

    /// Decodes one WebSocket message. Binary messages are v4 raw bytes, or v3 `0x04` + bytes.
    public static func decode(_ message: WebSocketMessage, version: EngineIOVersion) throws(EngineIOError) -> EnginePacket {
        switch message {
        case .text(let text):
            return try decodePacket(text: text, version: version)
        case .binary(let bytes):
            switch version {
            case .v4:
                return EnginePacket(.message, .binary(bytes))
            case .v3:
                guard let typeByte = bytes.first else { throw EngineIOError(.emptyPacket, offset: 0) }
                guard let type = EnginePacketType(rawValue: typeByte) else {
                    throw EngineIOError(.unknownPacketType, offset: 0, excerpt: excerpt(bytes))
                }
                return EnginePacket(type, .binary(Array(bytes.dropFirst())))
            }
        }
    }

    /// Decodes a WebSocket text frame given as raw bytes (as a transport sees it), refusing invalid UTF-8.
    public static func decodeTextFrame(_ bytes: [UInt8], version: EngineIOVersion) throws(EngineIOError) -> EnginePacket {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw EngineIOError(.invalidUTF8, offset: 0, excerpt: excerpt(bytes))
        }
        return try decodePacket(text: text, version: version)
    }

    /// Encodes one packet as a WebSocket message. `base64Binary` is the v3 `b64=1` mode.
    public static func encode(
        _ packet: EnginePacket,
        version: EngineIOVersion,
        base64Binary: Bool = false
    ) -> WebSocketMessage {
        guard case .binary(let bytes) = packet.payload, !base64Binary else {
            return .text(encodeText(packet, version: version))
        }
        switch version {
        case .v4: return .binary(bytes)
        case .v3: return .binary([packet.type.rawValue] + bytes)
        }
    }

    /// How a polling body is framed.
    public enum PayloadFraming: Sendable, Hashable {
        /// Text: v4 `\x1e`-separated, v3 `<len>:` framed; binary as base64.
        case text
        /// v3 only: the XHR2 binary payload, for clients that did not ask for `b64`.
        case binary
    }

    /// Encodes packets as one polling body.
    ///
    /// - Parameter binaryFraming: for v3, use the XHR2 binary framing when the batch holds binary
    ///   (the JS server does so for clients that did not send `b64=1`). Ignored for v4.
    /// - Returns: the body and how it is framed (which decides the `Content-Type`).
    public static func encodePayload(
        _ packets: [EnginePacket],
        version: EngineIOVersion,
        binaryFraming: Bool = false
    ) -> (body: [UInt8], framing: PayloadFraming) {
        switch version {
        case .v4:
            var body: [UInt8] = []
            for (offset, packet) in packets.enumerated() {
                if offset > 0 { body.append(0x1E) }
                body.append(contentsOf: encodeText(packet, version: .v4).utf8)
            }
            return (body, .text)
        case .v3:
            if binaryFraming, packets.contains(where: \.isBinary) {
                return (encodeXHR2Payload(packets), .binary)
            }
            if packets.isEmpty { return (Array("0:".utf8), .text) }
            var body = ""
            for packet in packets {
                let text = encodeText(packet, version: .v3)
                body += String(text.utf16.count)
                body += ":"
                body += text
            }
            return (Array(body.utf8), .text)
        }
    }

    private static func encodeXHR2Payload(_ packets: [EnginePacket]) -> [UInt8] {
        var body: [UInt8] = []
        for packet in packets {
            let content: [UInt8]
            let marker: UInt8
            if case .binary(let bytes) = packet.payload {
                marker = 1
                content = [packet.type.rawValue] + bytes
            } else {
                marker = 0
                content = Array(encodeText(packet, version: .v3).utf8)
            }
            body.append(marker)
            body.append(contentsOf: String(content.count).utf8.map { $0 - UInt8(ascii: "0") })
            body.append(0xFF)
            body.append(contentsOf: content)
        }
        return body
    }

    /// Decodes a whole polling body. Any error rejects the body, as the JS parser does.
    public static func decodePayload(_ body: some Collection<UInt8>, version: EngineIOVersion) throws(EngineIOError) -> [EnginePacket] {
        var decoder = PollingPayloadDecoder(version: version)
        var packets = try decoder.feed(body)
        packets += try decoder.finish()
        return packets
    }
}
