public import NIOCore
import NIOWebSocket
public import SocketIOProtocol

/// Relays WebSocket frames between two channels on one event loop, frame for frame, without
/// leaving the loop: what a client sends reaches the upstream in the same tick, with its own
/// masking key, so the bytes upstream are the bytes the client wrote. Fragments, pings, pongs and
/// close frames go through as they are; each side's TCP end closes the other.
///
/// Observing comes after forwarding: whole messages (fragments joined, up to `maxMessageSize`)
/// are handed to ``WebSocketRelay/Observer`` once the batch of reads has been flushed on, so
/// decoding never delays a frame.
public enum WebSocketRelay {
    /// Which peer a channel talks to.
    public enum Side: Sendable, Hashable {
        case client, upstream

        var other: Side { self == .client ? .upstream : .client }
    }

    /// What the relay reports; called on the event loop.
    public struct Observer: Sendable {
        /// A whole message, read from `side`.
        public var message: @Sendable (_ from: Side, _ message: WebSocketMessage) -> Void
        /// A message from `side` larger than the limit: relayed, not observed.
        public var oversized: @Sendable (_ from: Side, _ size: Int) -> Void
        /// The relay ended; `closedBy` sent the first close frame, or else dropped its TCP first.
        public var ended: @Sendable (_ closedBy: Side) -> Void

        public init(
            message: @escaping @Sendable (Side, WebSocketMessage) -> Void,
            oversized: @escaping @Sendable (Side, Int) -> Void,
            ended: @escaping @Sendable (Side) -> Void
        ) {
            self.message = message
            self.oversized = oversized
            self.ended = ended
        }
    }

    /// The pair's shared state: who closed first, and whether the end was reported.
    final class Pair {
        let observer: Observer
        let maxMessageSize: Int
        var closedBy: WebSocketRelay.Side?
        /// Set once the relay is over; reported when the client is attached, not before, so the
        /// observer hears of a conn's end only after its start.
        var endedBy: WebSocketRelay.Side?
        var attached = false

        init(observer: Observer, maxMessageSize: Int) {
            self.observer = observer
            self.maxMessageSize = maxMessageSize
        }

        func end(inactive side: Side) {
            guard endedBy == nil else { return }
            let by = closedBy ?? side
            endedBy = by
            if attached { observer.ended(by) }
        }

        func attach() {
            attached = true
            if let endedBy { observer.ended(endedBy) }
        }
    }
}

/// One side of a relay. Reads frames from its channel and writes them to its partner's; holds
/// reads while the partner cannot take more, and frames that arrive before it has a partner.
public final class WebSocketRelayHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = WebSocketFrame
    public typealias OutboundIn = WebSocketFrame
    public typealias OutboundOut = WebSocketFrame

    let side: WebSocketRelay.Side
    private let pair: WebSocketRelay.Pair
    private var context: ChannelHandlerContext?
    private var partner: WebSocketRelayHandler?
    /// Frames read before the partner was attached (an upstream's open packet comes at once); they
    /// are observed once it is, so the session's first record comes first.
    private var early: [WebSocketFrame] = []
    private var readHeld = false
    private var assembling: (opcode: WebSocketOpcode, bytes: [UInt8], oversized: Bool)?
    private var toObserve: [WebSocketMessage] = []

    init(side: WebSocketRelay.Side, pair: WebSocketRelay.Pair) {
        self.side = side
        self.pair = pair
    }

    /// A handler for the upstream channel; pair it with ``attachClient(to:)`` once the client's
    /// upgrade is done.
    public static func upstream(observer: WebSocketRelay.Observer, maxMessageSize: Int) -> WebSocketRelayHandler {
        WebSocketRelayHandler(side: .upstream, pair: .init(observer: observer, maxMessageSize: maxMessageSize))
    }

    /// Makes this upstream handler's partner for the client channel and starts the relay. Call on
    /// the event loop both channels share.
    public func attachClient(to channel: any Channel) throws {
        precondition(side == .upstream)
        channel.eventLoop.preconditionInEventLoop()
        let client = WebSocketRelayHandler(side: .client, pair: pair)
        try channel.pipeline.syncOperations.addHandler(client)
        client.partner = self
        partner = client
        for frame in early { client.forward(frame) }
        early = []
        client.context?.flush()
        observeCollected()
        pair.attach()
        if readHeld {
            readHeld = false
            context?.read()
        }
        if context == nil || pair.endedBy != nil { client.context?.close(promise: nil) }
    }

    /// Closes an upstream that never got its client (the client's upgrade failed).
    public func abandon() {
        if partner == nil { context?.close(promise: nil) }
    }

    // MARK: ChannelHandler

    public func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if frame.opcode == .connectionClose, pair.closedBy == nil { pair.closedBy = side }
        if let partner {
            partner.forward(frame)
        } else {
            early.append(frame)
        }
        collect(frame)
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        guard let partner else { return }
        partner.context?.flush()
        observeCollected()
    }

    private func observeCollected() {
        guard !toObserve.isEmpty else { return }
        let messages = toObserve
        toObserve = []
        for message in messages { pair.observer.message(side, message) }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        pair.end(inactive: side)
        partner?.context?.close(promise: nil)
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    public func read(context: ChannelHandlerContext) {
        if let partner, partner.context?.channel.isWritable ?? false {
            context.read()
        } else {
            readHeld = true
        }
    }

    // MARK: Relaying

    /// Writes a frame read by the partner out of this side's channel.
    private func forward(_ frame: WebSocketFrame) {
        guard let context else { return }
        // Towards the upstream a frame must be masked: the client's own key keeps the bytes the
        // same. Towards the client, frames go unmasked.
        let maskKey = side == .upstream ? (frame.maskKey ?? .random()) : nil
        let relayed = WebSocketFrame(
            fin: frame.fin, rsv1: frame.rsv1, rsv2: frame.rsv2, rsv3: frame.rsv3, opcode: frame.opcode,
            maskKey: maskKey, data: frame.unmaskedData
        )
        context.write(wrapOutboundOut(relayed), promise: nil)
    }

    private func partnerBecameWritable() {
        guard readHeld else { return }
        readHeld = false
        context?.read()
    }

    /// Joins data frames into messages for the observer, up to the size limit.
    private func collect(_ frame: WebSocketFrame) {
        switch frame.opcode {
        case .text, .binary:
            assembling = (frame.opcode, [], false)
        case .continuation:
            guard assembling != nil else { return }
        default:
            return
        }
        guard var message = assembling else { return }
        assembling = nil
        if !message.oversized {
            if message.bytes.count + frame.length > pair.maxMessageSize {
                message.oversized = true
                pair.observer.oversized(side, message.bytes.count + frame.length)
                message.bytes = []
            } else {
                var data = frame.unmaskedData
                message.bytes += data.readBytes(length: data.readableBytes) ?? []
            }
        }
        guard frame.fin else {
            assembling = message
            return
        }
        guard !message.oversized else { return }
        // Invalid UTF-8 in a text frame is kept visible rather than dropped.
        toObserve.append(message.opcode == .text ? .text(String(decoding: message.bytes, as: UTF8.self)) : .binary(message.bytes))
    }
}

@available(*, unavailable)
extension WebSocketRelayHandler: Sendable {}
