/// Decodes an HTTP long-polling body into Engine.IO packets as its bytes arrive.
///
/// Feed the body in chunks split anywhere (mid-packet, mid-length, mid-UTF-8 character);
/// each call returns the packets completed so far, and ``finish()`` checks that the body ended
/// on a packet boundary. The framing is chosen by version, and for v3 by the first byte: a text
/// payload starts with a length digit, an XHR2 binary payload with `0x00` or `0x01`.
public struct PollingPayloadDecoder: Sendable {
    public let version: EngineIOVersion

    private enum V3Framing: Sendable { case undecided, text, binary }

    private var buffer: [UInt8] = []
    /// Bytes of `buffer` already consumed; compacted lazily to keep feeding linear.
    private var consumed = 0
    /// Offset of `buffer[0]` within the whole body, for error offsets.
    private var bodyOffset = 0
    private var sawAnyByte = false
    private var v3Framing: V3Framing = .undecided

    public init(version: EngineIOVersion) { self.version = version }

    /// Adds the next chunk of the body and returns the packets it completes.
    public mutating func feed(_ chunk: some Collection<UInt8>) throws(EngineIOError) -> [EnginePacket] {
        guard !chunk.isEmpty else { return [] }
        sawAnyByte = true
        buffer.append(contentsOf: chunk)
        let packets = try drain(final: false)
        compact()
        return packets
    }

    /// Ends the body: returns the last packets, or throws if the body stopped mid-packet.
    public mutating func finish() throws(EngineIOError) -> [EnginePacket] {
        guard sawAnyByte else { throw EngineIOError(.emptyPayload, offset: 0) }
        let packets = try drain(final: true)
        buffer.removeAll()
        consumed = 0
        return packets
    }

    private mutating func compact() {
        if consumed > 0, consumed >= buffer.count / 2 {
            buffer.removeFirst(consumed)
            bodyOffset += consumed
            consumed = 0
        }
    }

    private mutating func drain(final: Bool) throws(EngineIOError) -> [EnginePacket] {
        switch version {
        case .v4: return try drainV4(final: final)
        case .v3:
            if v3Framing == .undecided, consumed < buffer.count {
                v3Framing = buffer[consumed] <= 1 ? .binary : .text
            }
            switch v3Framing {
            case .undecided: return []
            case .text: return try drainV3Text(final: final)
            case .binary: return try drainV3Binary(final: final)
            }
        }
    }

    // MARK: v4: packets separated by 0x1E

    private mutating func drainV4(final: Bool) throws(EngineIOError) -> [EnginePacket] {
        var packets: [EnginePacket] = []
        let bodyOffset = self.bodyOffset
        try buffer.withBytes { bytes throws(EngineIOError) in
            var start = consumed
            var index = consumed
            while index < bytes.count {
                if bytes[index] == 0x1E {
                    packets.append(try EngineIOCodec.decodePacket(utf8: bytes[start..<index], version: .v4, offset: bodyOffset + start, validateUTF8: true))
                    start = index + 1
                }
                index += 1
            }
            if final {
                packets.append(try EngineIOCodec.decodePacket(utf8: bytes[start..<bytes.count], version: .v4, offset: bodyOffset + start, validateUTF8: true))
                start = bytes.count
            }
            consumed = start
        }
        return packets
    }

    // MARK: v3 text: `<len>:<packet>` with len in UTF-16 code units

    private mutating func drainV3Text(final: Bool) throws(EngineIOError) -> [EnginePacket] {
        var packets: [EnginePacket] = []
        let bodyOffset = self.bodyOffset
        try buffer.withBytes { bytes throws(EngineIOError) in
            while consumed < bytes.count {
                var index = consumed
                var length = 0
                var digits = 0
                while index < bytes.count, bytes[index] != UInt8(ascii: ":") {
                    let digit = bytes[index] &- UInt8(ascii: "0")
                    guard digit < 10, digits < 10 else {
                        throw EngineIOError(.invalidLength, offset: bodyOffset + index, excerpt: excerpt(bytes[consumed...]))
                    }
                    length = length * 10 + Int(digit)
                    digits += 1
                    index += 1
                }
                guard index < bytes.count else { break }  // length still arriving
                guard digits > 0 else {
                    throw EngineIOError(.invalidLength, offset: bodyOffset + index, excerpt: excerpt(bytes[consumed...]))
                }
                let packetStart = index + 1
                guard let packetEnd = Self.endOfUTF16Units(length, in: bytes, from: packetStart) else { break }
                guard packetEnd >= 0 else {
                    throw EngineIOError(.invalidLength, offset: bodyOffset + consumed, excerpt: excerpt(bytes[consumed...]))
                }
                if packetEnd > packetStart {
                    packets.append(try EngineIOCodec.decodePacket(utf8: bytes[packetStart..<packetEnd], version: .v3, offset: bodyOffset + packetStart, validateUTF8: true))
                }
                consumed = packetEnd
            }
            if final, consumed < bytes.count {
                throw EngineIOError(.invalidLength, offset: bodyOffset + consumed, excerpt: excerpt(bytes[consumed...]))
            }
        }
        return packets
    }

    /// Where `units` UTF-16 code units starting at `start` end: `nil` when more bytes are needed,
    /// -1 when the count ends inside a surrogate pair (which JavaScript would split, and so fail).
    private static func endOfUTF16Units(_ units: Int, in bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        var index = start
        var counted = 0
        while counted < units {
            guard index < bytes.count else { return nil }
            let lead = bytes[index]
            let (width, unitCount) =
                switch lead {
                case 0x00..<0x80: (1, 1)
                case 0xC0..<0xE0: (2, 1)
                case 0xE0..<0xF0: (3, 1)
                case 0xF0..<0xF8: (4, 2)
                default: (1, 1)  // invalid UTF-8: caught when the packet is validated
                }
            if counted + unitCount > units { return -1 }
            guard index + width <= bytes.count else { return nil }
            index += width
            counted += unitCount
        }
        return index
    }

    // MARK: v3 XHR2 binary: marker, length digits as bytes, 0xFF, body

    private mutating func drainV3Binary(final: Bool) throws(EngineIOError) -> [EnginePacket] {
        var packets: [EnginePacket] = []
        let bodyOffset = self.bodyOffset
        try buffer.withBytes { bytes throws(EngineIOError) in
            while consumed < bytes.count {
                let marker = bytes[consumed]
                guard marker <= 1 else {
                    throw EngineIOError(.invalidBinaryPayload, offset: bodyOffset + consumed)
                }
                var index = consumed + 1
                var length = 0
                var digits = 0
                while index < bytes.count, bytes[index] != 0xFF {
                    // The JS decoder gives up after 310 digits; anything past 10 cannot be a real length.
                    guard bytes[index] < 10, digits < 10 else {
                        throw EngineIOError(.invalidBinaryPayload, offset: bodyOffset + index)
                    }
                    length = length * 10 + Int(bytes[index])
                    digits += 1
                    index += 1
                }
                guard index < bytes.count else { break }
                guard digits > 0 else { throw EngineIOError(.invalidBinaryPayload, offset: bodyOffset + index) }
                let bodyStart = index + 1
                guard bodyStart + length <= bytes.count else { break }
                let content = bytes[bodyStart..<bodyStart + length]
                if marker == 0 {
                    packets.append(try EngineIOCodec.decodePacket(utf8: content, version: .v3, offset: bodyOffset + bodyStart, validateUTF8: true))
                } else {
                    guard let typeByte = content.first, let type = EnginePacketType(rawValue: typeByte) else {
                        throw EngineIOError(.unknownPacketType, offset: bodyOffset + bodyStart)
                    }
                    packets.append(EnginePacket(type, .binary(Array(content.dropFirst()))))
                }
                consumed = bodyStart + length
            }
            if final, consumed < bytes.count {
                throw EngineIOError(.invalidBinaryPayload, offset: bodyOffset + consumed)
            }
        }
        return packets
    }
}
