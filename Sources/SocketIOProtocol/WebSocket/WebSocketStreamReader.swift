/// Reads the frames of one direction of a WebSocket from its raw bytes, in chunks cut anywhere, and
/// reports whole messages: what the proxy observes while it forwards the bytes themselves.
///
/// It checks only what it needs to follow the stream (RFC 6455 section 5.2): frame lengths,
/// masking, fragments, control frames. Anything it cannot follow is reported once as
/// ``Event/malformed(_:)`` and reading stops, since the frame boundaries are then unknown; the
/// peers decide what to do about it, and the bytes keep flowing.
public struct WebSocketStreamReader: Sendable {
    public enum Event: Sendable, Hashable {
        /// A whole text or binary message, fragments joined, unmasked.
        case message(WebSocketMessage)
        /// A whole message whose first frame set RSV1: compressed with permessage-deflate (RFC
        /// 7692), its bytes as they came, for whoever knows the negotiated context to inflate.
        case compressed(text: Bool, bytes: [UInt8])
        /// A message longer than the limit: its bytes went by, unread. Reported once, when its
        /// size first passes the limit.
        case oversized(Int)
        /// A close frame, with its status code when it has one.
        case close(code: UInt16?)
        /// The stream broke the framing rules; nothing more is read.
        case malformed(String)
    }

    public let maxMessageSize: Int

    private enum Opcode: UInt8 {
        case continuation = 0x0, text = 0x1, binary = 0x2, close = 0x8, ping = 0x9, pong = 0xA
        var isControl: Bool { rawValue & 0x8 != 0 }
    }

    private struct Frame {
        var fin: Bool
        var opcode: Opcode
        var mask: (UInt8, UInt8, UInt8, UInt8)?
        var remaining: UInt64
        var offset = 0
    }

    /// The header read so far (2 to 14 bytes), while no frame is open.
    private var header: [UInt8] = []
    private var frame: Frame?
    /// The data message being joined, and whether it already passed the limit.
    private var message: (opcode: Opcode, bytes: [UInt8], oversized: Bool, compressed: Bool)?
    /// A control frame's payload (at most 125 bytes).
    private var control: [UInt8] = []
    private var failed = false

    public init(maxMessageSize: Int) {
        self.maxMessageSize = maxMessageSize
    }

    /// A data message begun and not finished (the stream ended inside it): the bytes of it read,
    /// and the size its frames so far announced. `nil` for one already reported oversized.
    public var unfinished: (received: Int, announced: Int)? {
        guard let message, !message.oversized else { return nil }
        let pending = frame.map { $0.opcode.isControl ? 0 : Int(clamping: $0.remaining) } ?? 0
        return (message.bytes.count, message.bytes.count + pending)
    }

    /// Reads the next chunk of the stream, appending what it completes to `events`.
    public mutating func read(_ bytes: UnsafeRawBufferPointer, into events: inout [Event]) {
        var index = 0
        while index < bytes.count, !failed {
            if frame == nil {
                index = readHeader(bytes, from: index, into: &events)
            } else {
                index = readPayload(bytes, from: index, into: &events)
            }
        }
    }

    public mutating func read(_ bytes: [UInt8], into events: inout [Event]) {
        bytes.withUnsafeBytes { read($0, into: &events) }
    }

    private mutating func readHeader(_ bytes: UnsafeRawBufferPointer, from start: Int, into events: inout [Event]) -> Int {
        var index = start
        while index < bytes.count {
            header.append(bytes[index])
            index += 1
            guard header.count >= 2, header.count == WebSocketFrameHeader.size(secondByte: header[1]) else { continue }
            let read = header.withUnsafeBytes { WebSocketFrameHeader.read($0) }
            header.removeAll(keepingCapacity: true)
            switch read {
            case .success(let frameHeader)?: startFrame(frameHeader, into: &events)
            case .failure(let malformed)?: fail(malformed.reason, into: &events)
            case nil: preconditionFailure("a header of its whole size reads")
            }
            return index
        }
        return index
    }

    private mutating func startFrame(_ header: WebSocketFrameHeader, into events: inout [Event]) {
        // The header reader knows every opcode this can be.
        let opcode = Opcode(rawValue: header.opcode)!
        if opcode.isControl {
            control.removeAll(keepingCapacity: true)
        } else if opcode == .continuation {
            guard message != nil else { return fail("continuation frame without a message", into: &events) }
        } else {
            guard message == nil else { return fail("new message before the last one's final fragment", into: &events) }
            message = (opcode, [], false, header.rsv1)
        }
        frame = Frame(fin: header.fin, opcode: opcode, mask: header.mask, remaining: header.length)
        if !opcode.isControl { noteSize(adding: header.length, into: &events) }
        if header.length == 0 { finishFrame(into: &events) }
    }

    /// Marks the message oversized once its announced size passes the limit, before any byte of
    /// it is kept.
    private mutating func noteSize(adding length: UInt64, into events: inout [Event]) {
        guard var current = message, !current.oversized else { return }
        let size = UInt64(current.bytes.count) + length
        guard size > UInt64(maxMessageSize) else { return }
        current.oversized = true
        current.bytes = []
        message = current
        events.append(.oversized(Int(clamping: size)))
    }

    private mutating func readPayload(_ bytes: UnsafeRawBufferPointer, from start: Int, into events: inout [Event]) -> Int {
        guard var current = frame else { return start }
        let take = Int(min(UInt64(bytes.count - start), current.remaining))
        let chunk = UnsafeRawBufferPointer(rebasing: bytes[start..<(start + take)])
        if current.opcode.isControl {
            append(chunk, mask: current.mask, offset: current.offset, to: &control)
        } else if message?.oversized == false {
            // Appending through the optional keeps the buffer unique: no copy per chunk.
            append(chunk, mask: current.mask, offset: current.offset, to: &message!.bytes)
        }
        current.offset += take
        current.remaining -= UInt64(take)
        frame = current
        if current.remaining == 0 { finishFrame(into: &events) }
        return start + take
    }

    private func append(_ chunk: UnsafeRawBufferPointer, mask: (UInt8, UInt8, UInt8, UInt8)?, offset: Int, to out: inout [UInt8]) {
        let start = out.count
        out.append(contentsOf: chunk)
        guard let mask else { return }
        withUnsafeBytes(of: mask) { key in
            out.withUnsafeMutableBufferPointer { buffer in
                for index in 0..<chunk.count { buffer[start + index] ^= key[(offset + index) & 3] }
            }
        }
    }

    private mutating func finishFrame(into events: inout [Event]) {
        guard let finished = frame else { return }
        frame = nil
        if finished.opcode == .close {
            events.append(.close(code: control.count >= 2 ? UInt16(control[0]) << 8 | UInt16(control[1]) : nil))
            return
        }
        guard !finished.opcode.isControl, finished.fin, let whole = message else { return }
        message = nil
        guard !whole.oversized else { return }
        if whole.compressed {
            events.append(.compressed(text: whole.opcode == .text, bytes: whole.bytes))
            return
        }
        // Invalid UTF-8 in a text message is kept visible (replacement characters), not dropped.
        events.append(.message(whole.opcode == .text ? .text(String(decoding: whole.bytes, as: UTF8.self)) : .binary(whole.bytes)))
    }

    private mutating func fail(_ reason: String, into events: inout [Event]) {
        failed = true
        frame = nil
        message = nil
        events.append(.malformed(reason))
    }
}
