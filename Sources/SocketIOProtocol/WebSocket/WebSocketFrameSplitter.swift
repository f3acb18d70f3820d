/// Cuts one direction of a WebSocket's raw bytes into whole frames, each with its bytes exactly as
/// they came: what a relay that decides per message (the proxy with `--fault`) needs, to pass on
/// untouched what it does not change. Frames are whole before they are given out, so a frame is
/// held in memory up to `maxFrameSize`; larger ones, and bytes that break the framing, end the
/// splitting (the caller relays the rest as it comes).
public struct WebSocketFrameSplitter: Sendable {
    public struct Frame: Sendable, Hashable {
        /// The frame as it was on the wire: header, masking key and (masked) payload.
        public var raw: [UInt8]
        public var fin: Bool
        public var rsv1: Bool
        public var opcode: UInt8
        /// The payload, unmasked.
        public var payload: [UInt8]

        public var isControl: Bool { opcode & 0x8 != 0 }
        public var isClose: Bool { opcode == 0x8 }
    }

    public enum Failure: Sendable, Hashable {
        case oversized(Int)
        case malformed(String)
    }

    public let maxFrameSize: Int
    private var pending: [UInt8] = []
    public private(set) var failure: Failure?

    public init(maxFrameSize: Int) {
        self.maxFrameSize = maxFrameSize
    }

    /// Adds bytes and returns the frames they complete. Once it has failed, it returns nothing and
    /// keeps nothing: ``takeRemainder()`` gives what it held.
    public mutating func read(_ bytes: UnsafeRawBufferPointer) -> [Frame] {
        guard failure == nil else { return [] }
        pending.append(contentsOf: bytes)
        var frames: [Frame] = []
        var start = 0
        while let (frame, end) = nextFrame(from: start) {
            frames.append(frame)
            start = end
        }
        pending.removeFirst(start)
        return frames
    }

    /// The bytes held when it failed (the start of the frame it could not take).
    public mutating func takeRemainder() -> [UInt8] {
        defer { pending = [] }
        return pending
    }

    private mutating func nextFrame(from start: Int) -> (Frame, Int)? {
        guard failure == nil else { return nil }
        let read = pending.withUnsafeBytes { WebSocketFrameHeader.read(UnsafeRawBufferPointer(rebasing: $0[start...])) }
        let header: WebSocketFrameHeader
        switch read {
        case nil: return nil
        case .failure(let malformed)?:
            failure = .malformed(malformed.reason)
            return nil
        case .success(let read)?: header = read
        }
        guard header.length <= UInt64(maxFrameSize) else {
            failure = .oversized(Int(clamping: header.length))
            return nil
        }
        let total = header.size + Int(header.length)
        guard pending.count - start >= total else { return nil }
        var payload = Array(pending[(start + header.size)..<(start + total)])
        if let mask = header.mask {
            withUnsafeBytes(of: mask) { key in
                for index in payload.indices { payload[index] ^= key[index & 3] }
            }
        }
        let frame = Frame(raw: Array(pending[start..<(start + total)]), fin: header.fin, rsv1: header.rsv1, opcode: header.opcode, payload: payload)
        return (frame, start + total)
    }

    /// One final, unfragmented frame; masked (with a fresh key) when it goes to a server.
    public static func encode(opcode: UInt8, payload: [UInt8], masked: Bool) -> [UInt8] {
        var out: [UInt8] = [0x80 | opcode]
        let maskBit: UInt8 = masked ? 0x80 : 0
        if payload.count < 126 {
            out.append(maskBit | UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            out.append(maskBit | 126)
            out.append(UInt8(payload.count >> 8))
            out.append(UInt8(payload.count & 0xFF))
        } else {
            out.append(maskBit | 127)
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8((UInt64(payload.count) >> UInt64(shift)) & 0xFF)) }
        }
        guard masked else { return out + payload }
        var generator = SystemRandomNumberGenerator()
        let key = (0..<4).map { _ in UInt8.random(in: 0...255, using: &generator) }
        out.append(contentsOf: key)
        for (index, byte) in payload.enumerated() { out.append(byte ^ key[index & 3]) }
        return out
    }

    /// A whole message as one frame.
    public static func encode(_ message: WebSocketMessage, masked: Bool) -> [UInt8] {
        switch message {
        case .text(let text): encode(opcode: 0x1, payload: Array(text.utf8), masked: masked)
        case .binary(let bytes): encode(opcode: 0x2, payload: bytes, masked: masked)
        }
    }
}
