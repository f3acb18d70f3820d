/// Whether a stream whose place in its WebSocket is unknown (a capture started after the upgrade,
/// or bytes lost in the middle) can be read again from here: the bytes a segment brought must be
/// whole WebSocket frames, back to back, ending exactly where the segment ends, each one well
/// formed (RSV bits clear unless compression was agreed, a known opcode, control frames whole and
/// short, lengths in their shortest form, all masked or all not) and each text message an
/// Engine.IO packet in UTF-8. A segment that starts in the middle of a frame almost never passes
/// all of that by chance; one that passes proves its first byte is a frame's first byte. Pure.
enum FrameBoundary {
    /// What a proving segment says about its sender: clients mask their frames, servers do not.
    struct Proof: Equatable {
        var masked: Bool
        var frames: Int
    }

    static func proof(_ bytes: [UInt8], compressionAgreed: Bool = false) -> Proof? {
        var at = 0
        var masked: Bool?
        var frames = 0
        /// The opcode of a fragmented message still open, if any.
        var openMessage: UInt8?
        var message: [UInt8] = []
        while at < bytes.count {
            guard bytes.count - at >= 2 else { return nil }
            let first = bytes[at], second = bytes[at + 1]
            let fin = first & 0x80 != 0
            let rsv = first & 0x70
            let opcode = first & 0x0F
            let isControl = opcode >= 0x8
            guard rsv == 0 || (compressionAgreed && rsv == 0x40 && (opcode == 0x1 || opcode == 0x2)) else { return nil }
            switch opcode {
            case 0x0: guard openMessage != nil else { return nil }
            case 0x1, 0x2: guard openMessage == nil else { return nil }
            case 0x8, 0x9, 0xA: guard fin else { return nil }
            default: return nil
            }
            let isMasked = second & 0x80 != 0
            guard masked == nil || masked == isMasked else { return nil }
            masked = isMasked
            var length = UInt64(second & 0x7F)
            at += 2
            if length == 126 {
                guard bytes.count - at >= 2 else { return nil }
                length = UInt64(bytes[at]) << 8 | UInt64(bytes[at + 1])
                guard length >= 126 else { return nil }
                at += 2
            } else if length == 127 {
                guard bytes.count - at >= 8 else { return nil }
                length = bytes[at..<at + 8].reduce(0) { $0 << 8 | UInt64($1) }
                guard length > 0xFFFF, length >> 63 == 0 else { return nil }
                at += 8
            }
            guard !isControl || length <= 125 else { return nil }
            var key: [UInt8] = []
            if isMasked {
                guard bytes.count - at >= 4 else { return nil }
                key = Array(bytes[at..<at + 4])
                at += 4
            }
            guard UInt64(bytes.count - at) >= length else { return nil }
            let payloadEnd = at + Int(length)
            frames += 1
            if !isControl {
                let opening = opcode == 0 ? openMessage! : opcode
                if opening == 0x1, rsv == 0 {
                    for index in at..<payloadEnd {
                        message.append(isMasked ? bytes[index] ^ key[(index - at) & 3] : bytes[index])
                    }
                }
                if fin {
                    if opening == 0x1, rsv == 0, !isEngineText(message) { return nil }
                    openMessage = nil
                    message = []
                } else {
                    openMessage = opening
                }
            }
            at = payloadEnd
        }
        guard let masked else { return nil }
        return Proof(masked: masked, frames: frames)
    }

    /// An Engine.IO text packet (3 or 4): a type digit, then UTF-8.
    private static func isEngineText(_ message: [UInt8]) -> Bool {
        guard let type = message.first, (UInt8(ascii: "0")...UInt8(ascii: "6")).contains(type) else { return false }
        return String(validating: message, as: UTF8.self) != nil
    }
}
