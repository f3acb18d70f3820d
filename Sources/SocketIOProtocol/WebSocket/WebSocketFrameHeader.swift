/// A WebSocket frame's header (RFC 6455 section 5.2): the one reading of frame headers that
/// ``WebSocketStreamReader`` (observing) and ``WebSocketFrameSplitter`` (deciding per message)
/// share, with the rules every frame must follow on its own: a known opcode, a 63-bit length,
/// control frames final and at most 125 bytes. Rules across frames (fragments in order) are the
/// reader's.
public struct WebSocketFrameHeader: Sendable {
    public var fin: Bool
    /// Set by permessage-deflate on a message's first frame.
    public var rsv1: Bool
    public var opcode: UInt8
    /// The masking key (client to server frames).
    public var mask: (UInt8, UInt8, UInt8, UInt8)?
    public var length: UInt64
    /// The header's own bytes: 2 to 14.
    public var size: Int

    public var isControl: Bool { opcode & 0x8 != 0 }

    /// How many bytes the header has, told by its second byte.
    public static func size(secondByte: UInt8) -> Int {
        let lengthCode = secondByte & 0x7F
        return 2 + (lengthCode == 126 ? 2 : lengthCode == 127 ? 8 : 0) + (secondByte & 0x80 != 0 ? 4 : 0)
    }

    /// The header at the start of `bytes`: nil while bytes are missing, or why it breaks the rules.
    public static func read(_ bytes: UnsafeRawBufferPointer) -> Result<WebSocketFrameHeader, Malformed>? {
        guard bytes.count >= 2 else { return nil }
        let first = bytes[0], second = bytes[1]
        let size = size(secondByte: second)
        guard bytes.count >= size else { return nil }
        let opcode = first & 0x0F
        switch opcode {
        case 0x0, 0x1, 0x2, 0x8, 0x9, 0xA: break
        default: return .failure(Malformed("reserved opcode \(opcode)"))
        }
        var length = UInt64(second & 0x7F)
        var position = 2
        if length >= 126 {
            let width = length == 126 ? 2 : 8
            length = bytes[2..<(2 + width)].reduce(0) { $0 << 8 | UInt64($1) }
            position += width
            if width == 8, length >> 63 != 0 { return .failure(Malformed("frame length with its top bit set")) }
        }
        let mask = second & 0x80 != 0 ? (bytes[position], bytes[position + 1], bytes[position + 2], bytes[position + 3]) : nil
        let header = WebSocketFrameHeader(fin: first & 0x80 != 0, rsv1: first & 0x40 != 0, opcode: opcode, mask: mask, length: length, size: size)
        if header.isControl {
            guard header.fin else { return .failure(Malformed("fragmented control frame")) }
            guard length <= 125 else { return .failure(Malformed("control frame of \(length) bytes")) }
        }
        return .success(header)
    }

    /// Why a header breaks the framing rules (after it, frame boundaries are unknown).
    public struct Malformed: Error, Sendable, Hashable {
        public var reason: String
        init(_ reason: String) { self.reason = reason }
    }
}
