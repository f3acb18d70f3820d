public import NIOCore
import NIOWebSocket
public import SocketIOProtocol
import TransportCore

/// `true` to read on; `false`, and `resume` will be called (on any thread) once reading may go on.
public typealias ReadGate = @Sendable (_ resume: @escaping @Sendable () -> Void) -> Bool

/// Relays a WebSocket between two channels on one event loop, byte for byte, without leaving the
/// loop: what one peer sends reaches the other in the same tick, exactly as it was written (frame
/// headers, masking keys, fragments, pings, pongs, close frames, even frames that break the
/// rules: the peers judge those, not the proxy). Each side's TCP end closes the other.
///
/// Observing comes after forwarding: a ``WebSocketStreamReader`` per direction follows the frames
/// in the bytes, and the whole messages it finds (up to `maxMessageSize`) are handed to
/// ``WebSocketRelay/Observer`` once the batch of reads has been flushed on, so decoding never
/// delays a byte.
public enum WebSocketRelay {
    /// What the relay reports; called on the event loop.
    public struct Observer: Sendable {
        /// A whole message, read from `side`.
        public var message: @Sendable (_ from: Peer, _ message: WebSocketMessage) -> Void
        /// A message from `side` larger than the limit: relayed, not observed.
        public var oversized: @Sendable (_ from: Peer, _ size: Int) -> Void
        /// `side`'s bytes stopped following the framing rules: still relayed, no longer observed.
        public var malformed: @Sendable (_ from: Peer, _ reason: String) -> Void
        /// The relay ended; `closedBy` sent the first close frame, or else dropped its TCP first.
        public var ended: @Sendable (_ closedBy: Peer) -> Void
        /// `side`'s connection ended inside a message: how much of it was read, and how large its
        /// frames announced it (a server that closes on a message over its limit does this).
        public var unfinished: (@Sendable (_ from: Peer, _ received: Int, _ announced: Int) -> Void)?
        /// Whether the relay may read on (the observer keeps up); when it says no, reading stops
        /// until the observer calls `resume`, from any thread. The sockets then fill up, and the
        /// peers slow down, as with any slow reader.
        public var admit: ReadGate?
        /// Set, the relay goes message by message: each whole data message is held until
        /// ``Interception/decide`` says what becomes of it (and `message` is not called: the
        /// interception observes). Unset, bytes go through as they come.
        public var interception: Interception?

        public init(
            message: @escaping @Sendable (Peer, WebSocketMessage) -> Void,
            oversized: @escaping @Sendable (Peer, Int) -> Void,
            malformed: @escaping @Sendable (Peer, String) -> Void,
            ended: @escaping @Sendable (Peer) -> Void,
            admit: ReadGate? = nil,
            interception: Interception? = nil,
            unfinished: (@Sendable (Peer, Int, Int) -> Void)? = nil
        ) {
            self.unfinished = unfinished
            self.message = message
            self.oversized = oversized
            self.malformed = malformed
            self.ended = ended
            self.admit = admit
            self.interception = interception
        }
    }

    /// How a relay that decides per message is told what to do (fault injection).
    public struct Interception: Sendable {
        /// What becomes of a whole data message read from `from`; called on the event loop, in
        /// order, once the relay has both sides.
        public var decide: @Sendable (_ from: Peer, _ message: WebSocketMessage, _ wireSize: Int) -> InterceptionDecision<WebSocketMessage>
        /// Called once the relay runs, with what can cut it from elsewhere (a timed disconnect).
        public var started: @Sendable (Control) -> Void

        public init(decide: @escaping @Sendable (Peer, WebSocketMessage, Int) -> InterceptionDecision<WebSocketMessage>, started: @escaping @Sendable (Control) -> Void) {
            self.decide = decide
            self.started = started
        }
    }

    /// Acts on a running relay from any thread: cuts it, or sends messages of the proxy's own.
    public struct Control: Sendable {
        let handler: NIOLoopBound<WebSocketRelayHandler>

        public func cut(_ how: ConnectionCut) {
            handler.eventLoop.execute { handler.value.cut(how) }
        }

        /// The loop the relay runs on: work that must not interleave with its decisions runs there.
        public var eventLoop: any EventLoop { handler.eventLoop }

        /// Sends whole messages as if `from` had sent them (masked toward the server), after what
        /// that side has queued and between two of its messages. Call on ``eventLoop``.
        public func inject(from side: Peer, _ messages: [WebSocketMessage]) {
            handler.eventLoop.preconditionInEventLoop()
            handler.value.inject(from: side, messages)
        }
    }

    /// The pair's shared state: who closed first, and whether the end was reported.
    final class Pair {
        let observer: Observer
        let maxMessageSize: Int
        var closedBy: Peer?
        /// Set once the relay is over; reported when the client is attached, not before, so the
        /// observer hears of a conn's end only after its start.
        var endedBy: Peer?
        var attached = false

        init(observer: Observer, maxMessageSize: Int) {
            self.observer = observer
            self.maxMessageSize = maxMessageSize
        }

        func end(inactive side: Peer) {
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

/// One side of a relay. Reads bytes from its channel and writes them to its partner's; holds
/// reads while the partner cannot take more, and bytes that arrive before it has a partner.
///
/// It goes in the upgraded pipeline ahead of NIO's WebSocket frame codec, which then never sees a
/// byte: see ``install(_:in:)``.
public final class WebSocketRelayHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    let side: Peer
    let pair: WebSocketRelay.Pair
    var context: ChannelHandlerContext?
    var partner: WebSocketRelayHandler?
    /// Bytes read before the partner was attached (an upstream's open packet comes at once); they
    /// are observed once it is, so the session's first record comes first.
    private var early: [ByteBuffer] = []
    var readHeld = false
    /// Handed to the observer's gate when it says to pause; resumes reading on this loop.
    private var resumeReading: (@Sendable () -> Void)?
    private var reader: WebSocketStreamReader
    private var observedLast = false
    /// Bytes of the current batch of reads, followed for frames once the batch is flushed on.
    private var unread: [ByteBuffer] = []
    private var events: [WebSocketStreamReader.Event] = []
    /// Set when the relay goes message by message (see ``WebSocketRelay/Interception``).
    var interceptor: WebSocketRelayInterceptor?

    init(side: Peer, pair: WebSocketRelay.Pair) {
        self.side = side
        self.pair = pair
        reader = WebSocketStreamReader(maxMessageSize: pair.maxMessageSize)
        if pair.observer.interception != nil { interceptor = WebSocketRelayInterceptor(maxFrameSize: pair.maxMessageSize) }
    }

    /// A handler for the upstream channel; pair it with ``attachClient(to:)`` once the client's
    /// upgrade is done.
    public static func upstream(observer: WebSocketRelay.Observer, maxMessageSize: Int) -> WebSocketRelayHandler {
        WebSocketRelayHandler(side: .server, pair: .init(observer: observer, maxMessageSize: maxMessageSize))
    }

    /// Adds `handler` to a pipeline NIO's WebSocket upgrader has just set up, in front of the frame
    /// codec it added: the raw bytes (and those NIO buffered during the upgrade) come here, and
    /// what this handler writes goes to the socket as it is. The codec is left in place, unused:
    /// NIO's encoder cannot be removed, and its decoder would decode whatever it holds on the way
    /// out, so only a caller that knows it holds nothing removes it (`HTTPClient.dialRelay`).
    package static func install(_ handler: WebSocketRelayHandler, in channel: any Channel) throws {
        let pipeline = channel.pipeline.syncOperations
        let codec = try pipeline.handler(type: WebSocketFrameEncoder.self)
        try pipeline.addHandler(handler, position: .before(codec))
    }

    /// Makes this upstream handler's partner for the client channel and starts the relay. Call on
    /// the event loop both channels share. The partner goes at `position`, where the client's raw
    /// bytes will come (by default in front of NIO's frame codec, as ``install(_:in:)`` puts it).
    public func attachClient(to channel: any Channel, at position: ChannelPipeline.SynchronousOperations.Position? = nil) throws {
        precondition(side == .server)
        channel.eventLoop.preconditionInEventLoop()
        let client = WebSocketRelayHandler(side: .client, pair: pair)
        if let position {
            try channel.pipeline.syncOperations.addHandler(client, position: position)
        } else {
            try Self.install(client, in: channel)
        }
        client.partner = self
        partner = client
        if interceptor != nil {
            pair.observer.interception?.started(WebSocketRelay.Control(handler: NIOLoopBound(self, eventLoop: channel.eventLoop)))
            for buffer in early { intercept(buffer) }
        } else {
            for buffer in early { client.forward(buffer) }
        }
        early = []
        observeCollected()
        client.context?.flush()
        pair.attach()
        if readHeld {
            readHeld = false
            context?.read()
        }
        if !channel.isActive {
            // The client left while its upgrade was being completed: no inactive event will come
            // from its side, so end the relay from here.
            if pair.closedBy == nil { pair.closedBy = .client }
            context?.close(promise: nil)
        } else if context == nil || pair.endedBy != nil {
            client.context?.close(promise: nil)
        }
    }

    /// Closes an upstream that never got its client (the client's upgrade failed or it left).
    public func abandon() {
        if partner == nil { context?.close(promise: nil) }
    }

    // MARK: ChannelHandler

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if pair.observer.admit != nil {
            // Made once, not per read; the cycle through `self` is cut in handlerRemoved.
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            resumeReading = { handler.eventLoop.execute { handler.value.partnerBecameWritable() } }
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
        resumeReading = nil
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if interceptor != nil {
            if partner != nil { intercept(buffer) } else { early.append(buffer) }
            return
        }
        if let partner {
            partner.forward(buffer)
        } else {
            early.append(buffer)
        }
        unread.append(buffer)
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        // The batch is written already (channelRead); its records are made before it is flushed,
        // so that nothing it causes (another conn's broadcast, on another loop) can be recorded
        // before it: stamped after the flush, a cause could come after its effect in the capture.
        readFrames()
        if partner != nil { observeCollected() }
        partner?.context?.flush()
    }

    private func readFrames() {
        guard !unread.isEmpty else { return }
        let before = events.count
        for buffer in unread {
            buffer.withUnsafeReadableBytes { reader.read($0, into: &events) }
        }
        unread.removeAll(keepingCapacity: true)
        if pair.closedBy == nil, events[before...].contains(where: { if case .close = $0 { true } else { false } }) {
            pair.closedBy = side
        }
    }

    private func observeCollected() {
        guard !events.isEmpty else { return }
        let collected = events
        events = []
        for event in collected {
            switch event {
            case .message(let message): pair.observer.message(side, message)
            // The proxy takes permessage-deflate out of the offer; a peer that compresses anyway
            // is relayed, and said so.
            case .compressed: pair.observer.malformed(side, "a compressed message (permessage-deflate) that was not negotiated")
            case .oversized(let size): pair.observer.oversized(side, size)
            case .malformed(let reason): pair.observer.malformed(side, reason)
            case .close: break
            }
        }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        interceptor?.cancelRelease()
        readFrames()  // a close frame in the last batch still says who closed first
        if partner != nil {
            // Before the end, which closes the conn: what either side's last batch held, and a
            // message either was inside of (a server closing on one over its limit), is recorded.
            observeLast()
            partner?.observeLast()
        }
        pair.end(inactive: side)
        partner?.context?.close(promise: nil)
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// Observes what was read and not yet observed, and says of a message left unfinished; once.
    private func observeLast() {
        guard !observedLast else { return }
        observedLast = true
        readFrames()
        observeCollected()
        if let (received, announced) = reader.unfinished { pair.observer.unfinished?(side, received, announced) }
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    public func read(context: ChannelHandlerContext) {
        guard let partner, partner.context?.channel.isWritable ?? false, !(interceptor?.isBacklogged ?? false) else {
            readHeld = true
            return
        }
        if let admit = pair.observer.admit, let resumeReading, !admit(resumeReading) {
            // The capture is behind: read again once it has caught up.
            readHeld = true
            return
        }
        context.read()
    }

    // MARK: Relaying

    /// Writes bytes read by the partner out of this side's channel, unchanged.
    func forward(_ buffer: ByteBuffer) {
        context?.write(wrapOutboundOut(buffer), promise: nil)
    }

    /// Reading may go on (the partner drained, or the observer caught up).
    func partnerBecameWritable() {
        guard readHeld else { return }
        readHeld = false
        context?.read()
    }
}

@available(*, unavailable)
extension WebSocketRelayHandler: Sendable {}
