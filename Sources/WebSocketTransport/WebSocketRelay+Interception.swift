#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import SocketIOProtocol
import TransportCore

/// One side's state when the relay goes message by message: the frames being joined, the
/// messages held for a decision, and what waits to go to the other side (delays keep the order).
final class WebSocketRelayInterceptor {
    enum Item {
        case bytes([UInt8])
        case cut(ConnectionCut)
    }

    var splitter: WebSocketFrameSplitter
    /// Set once the bytes could not be followed (or a frame was too large): the rest goes as it comes.
    var passthrough = false
    var messageRaw: [UInt8] = []
    var messagePayload: [UInt8] = []
    var messageOpcode: UInt8 = 0
    var messageCompressed = false
    /// Messages kept for the next decision (a binary packet and its attachments so far).
    var held: [[UInt8]] = []
    /// Control frames that came inside what is joined or held: in place in its bytes, and on their
    /// own should the message not go as it came (a ping is never dropped with a packet).
    var controls: [UInt8] = []
    var queue: [(release: NIODeadline, item: Item)] = []
    var queuedBytes = 0
    var lastRelease = NIODeadline.uptimeNanoseconds(0)
    var scheduled: Scheduled<Void>?

    init(maxFrameSize: Int) {
        splitter = WebSocketFrameSplitter(maxFrameSize: maxFrameSize)
    }

    /// Reading stops while this much waits for its time (a throttle or a long delay under load),
    /// so the sender is slowed down as a slow reader would slow it.
    static let backlogLimit = 4 << 20

    var isBacklogged: Bool { queuedBytes > Self.backlogLimit }

    func cancelRelease() {
        scheduled?.cancel()
        scheduled = nil
        queue = []
        queuedBytes = 0
    }
}

extension WebSocketRelayHandler {
    /// Bytes read from this side, when the relay goes message by message.
    func intercept(_ buffer: ByteBuffer) {
        guard let state = interceptor, let interception = pair.observer.interception else { return }
        if state.passthrough {
            enqueue(.bytes(Array(buffer.readableBytesView)), delay: 0)
        } else {
            let frames = buffer.withUnsafeReadableBytes { state.splitter.read($0) }
            for frame in frames { take(frame, interception) }
            if let failure = state.splitter.failure {
                state.passthrough = true
                let rest = state.held.flatMap { $0 } + state.messageRaw + state.splitter.takeRemainder()
                state.held = []
                state.messageRaw = []
                state.controls = []
                enqueue(.bytes(rest), delay: 0)
                switch failure {
                case .oversized(let size): pair.observer.oversized(side, size)
                case .malformed(let reason): pair.observer.malformed(side, reason)
                }
            }
        }
        partner?.context?.flush()
    }

    private func take(_ frame: WebSocketFrameSplitter.Frame, _ interception: WebSocketRelay.Interception) {
        guard let state = interceptor else { return }
        if frame.isControl {
            if frame.isClose, pair.closedBy == nil { pair.closedBy = side }
            if !state.messageRaw.isEmpty {
                state.messageRaw += frame.raw
                state.controls += frame.raw
            } else if !state.held.isEmpty {
                state.held.append(frame.raw)
                state.controls += frame.raw
            } else {
                enqueue(.bytes(frame.raw), delay: 0)
            }
            return
        }
        if frame.opcode != 0 {
            state.messageRaw = frame.raw
            state.messagePayload = frame.payload
            state.messageOpcode = frame.opcode
            state.messageCompressed = frame.rsv1
        } else {
            state.messageRaw += frame.raw
            state.messagePayload += frame.payload
        }
        guard frame.fin else { return }
        let raw = state.messageRaw
        let payload = state.messagePayload
        state.messageRaw = []
        state.messagePayload = []
        if state.messageCompressed {
            // The proxy takes permessage-deflate out of the offer; a peer that compresses anyway is
            // relayed, not decided on.
            pair.observer.malformed(side, "a compressed message (permessage-deflate) that was not negotiated")
            enqueue(.bytes(state.held.flatMap { $0 } + raw), delay: 0)
            state.held = []
            state.controls = []
            return
        }
        let message: WebSocketMessage = state.messageOpcode == 0x1 ? .text(String(decoding: payload, as: UTF8.self)) : .binary(payload)
        let fate = interception.decide(side, message, raw.count)
        if case .hold = fate.delivery {
            state.held.append(raw)
            return
        }
        let group = state.held.flatMap { $0 } + raw
        let controls = state.controls
        state.held = []
        state.controls = []
        if !fate.reply.isEmpty, let context {
            // Back to the sender: masked when the sender is the server (the proxy is its client).
            for reply in fate.reply {
                context.write(wrapOutboundOut(ByteBuffer(bytes: WebSocketFrameSplitter.encode(reply, masked: side == .server))), promise: nil)
            }
            context.flush()
        }
        switch fate.delivery {
        case .pass: enqueue(.bytes(group), delay: fate.delay)
        case .replace(let messages):
            enqueue(.bytes(controls + messages.flatMap { WebSocketFrameSplitter.encode($0, masked: side == .client) }), delay: fate.delay)
        case .drop, .hold: enqueue(.bytes(controls), delay: fate.delay)
        }
        if let cut = fate.cut { enqueue(.cut(cut), delay: fate.delay) }
    }

    /// Messages of the proxy's own, as if `from` had sent them: queued by the handler reading that
    /// side, so they go between two whole messages and after what waits for its time.
    func inject(from peer: Peer, _ messages: [WebSocketMessage]) {
        guard let reader = side == peer ? self : partner, reader.interceptor != nil, !messages.isEmpty else { return }
        reader.enqueue(.bytes(messages.flatMap { WebSocketFrameSplitter.encode($0, masked: peer == .client) }), delay: 0)
        reader.partner?.context?.flush()
    }

    /// Sends `item` to the other side after `delay`, and never before what was queued earlier.
    private func enqueue(_ item: WebSocketRelayInterceptor.Item, delay: Double) {
        guard let state = interceptor, let loop = context?.eventLoop else { return }
        let now = loop.now
        var release = now + TimeAmount.seconds(clamping: delay)
        if release < state.lastRelease { release = state.lastRelease }
        state.lastRelease = release
        if state.queue.isEmpty, release <= now {
            perform(item)
            return
        }
        state.queue.append((release, item))
        if case .bytes(let bytes) = item { state.queuedBytes += bytes.count }
        scheduleRelease()
    }

    private func perform(_ item: WebSocketRelayInterceptor.Item) {
        switch item {
        case .bytes(let bytes): if !bytes.isEmpty { partner?.forward(ByteBuffer(bytes: bytes)) }
        case .cut(let how): cut(how)
        }
    }

    private func scheduleRelease() {
        guard let state = interceptor, state.scheduled == nil, let head = state.queue.first, let loop = context?.eventLoop else { return }
        let handler = NIOLoopBound(self, eventLoop: loop)
        state.scheduled = loop.scheduleTask(deadline: head.release) {
            handler.value.interceptor?.scheduled = nil
            handler.value.releaseDue()
        }
    }

    private func releaseDue() {
        guard let state = interceptor, let loop = context?.eventLoop else { return }
        let now = loop.now
        while let head = state.queue.first, head.release <= now {
            state.queue.removeFirst()
            if case .bytes(let bytes) = head.item { state.queuedBytes -= bytes.count }
            perform(head.item)
        }
        partner?.context?.flush()
        if readHeld, !state.isBacklogged { partnerBecameWritable() }
        scheduleRelease()
    }

    /// Ends both sides at once: a close frame (1001, going away) to each peer then the TCP close,
    /// or a TCP reset. What was waiting for its time is dropped.
    func cut(_ how: ConnectionCut) {
        if pair.closedBy == nil { pair.closedBy = .proxy }
        for end in [self, partner].compactMap({ $0 }) {
            end.interceptor?.cancelRelease()
            guard let context = end.context else { continue }
            let channel = context.channel
            switch how {
            case .close:
                let frame = WebSocketFrameSplitter.encode(opcode: 0x8, payload: [0x03, 0xE9], masked: end.side == .server)
                context.writeAndFlush(end.wrapOutboundOut(ByteBuffer(bytes: frame))).whenComplete { _ in channel.close(promise: nil) }
            case .reset:
                // SO_LINGER 0: close(2) sends a RST instead of a FIN.
                guard let socket = channel as? any SocketOptionProvider else {
                    channel.close(promise: nil)
                    continue
                }
                socket.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
            }
        }
    }
}
