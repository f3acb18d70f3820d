import HTTPClientTransport
import NIOCore
import NIOHTTP1
import NIOWebSocket
import SocketIOProtocol
import TransportTLS

/// A virtual user on a WebSocket, with no task of its own: a handler behind NIO's frame codec that
/// does Engine.IO (the open packet, heartbeats both generations' way, binary frames) and Socket.IO
/// (the session's parser, attachments) and hands packets to the user's ``UserSession``. A load of
/// ten thousand users is ten thousand of these on the event loops.
final class WebSocketUser: ChannelInboundHandler, UserTransport {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    /// The largest message a user takes (fragments joined); a bigger one ends its session.
    static let largestMessage = 16 << 20

    private let version: EngineIOVersion
    private var codec: SocketIOPacketCodec
    private var session: UserSession!
    private var context: ChannelHandlerContext?
    private var opened = false
    private var closing = false
    private var fragments: (opcode: WebSocketOpcode, bytes: [UInt8])?
    /// Masking keys: RFC 6455 asks clients to mask; they need not be secret from one's own server.
    private var random: SplitMix64
    private var openTimer: Scheduled<Void>?
    private var pingTimer: RepeatedTask?
    /// The polling user whose session this WebSocket is to carry (`2probe`, `3probe`, `5`), until
    /// it does: nil for a session opened on the WebSocket.
    private var upgrading: NIOLoopBound<LongPollingUser>?

    init(version: EngineIOVersion, parser: SocketIOParser, seed: UInt64, upgrading: NIOLoopBound<LongPollingUser>? = nil) {
        self.version = version
        codec = SocketIOPacketCodec(parser: parser, version: SocketIOVersion(engine: version))
        random = SplitMix64(seed: seed)
        self.upgrading = upgrading
    }

    func attach(_ session: UserSession) {
        self.session = session
        session.transport = self
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        // A server that upgrades and never sends its open packet (or never answers the probe)
        // ends the user's session (or the upgrade: the session goes on polling).
        openTimer = context.eventLoop.scheduleTask(in: .seconds(10)) { bound.value.close() }
    }

    /// `2probe`, for an upgrade.
    func sendProbe() {
        if upgrading != nil { sendEngine([EnginePacket(.ping, .text("probe"))]) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        openTimer?.cancel()
        pingTimer?.cancel()
        self.context = nil
        if let upgrading {
            self.upgrading = nil
            upgrading.value.probeFailed()
        } else {
            session.transportEnded()
        }
        context.fireChannelInactive()
    }

    /// The polling user has paused and drained: this WebSocket carries the session from now on,
    /// starting with what was waiting to be sent.
    func upgrade(_ session: UserSession, sending waiting: [EnginePacket], pingInterval: Int) {
        upgrading = nil
        attach(session)
        sendEngine([EnginePacket(.upgrade)] + waiting)
        opened = true
        if version == .v3, let context { startPinging(every: pingInterval, on: context.eventLoop) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary:
            var data = frame.unmaskedData
            let bytes = data.readBytes(length: data.readableBytes) ?? []
            if frame.fin { message(frame.opcode, bytes) } else { fragments = (frame.opcode, bytes) }
        case .continuation:
            guard var partial = fragments else { return close() }
            var data = frame.unmaskedData
            partial.bytes += data.readBytes(length: data.readableBytes) ?? []
            guard partial.bytes.count <= Self.largestMessage else { return close() }
            if frame.fin {
                fragments = nil
                message(partial.opcode, partial.bytes)
            } else {
                fragments = partial
            }
        case .ping:
            write(WebSocketFrame(fin: true, opcode: .pong, maskKey: maskKey(), data: frame.unmaskedData))
            context.flush()
        case .connectionClose:
            context.close(promise: nil)
        default:
            break
        }
    }

    private func message(_ opcode: WebSocketOpcode, _ bytes: [UInt8]) {
        let message: WebSocketMessage = opcode == .text ? .text(String(decoding: bytes, as: UTF8.self)) : .binary(bytes)
        guard let packet = try? EngineIOCodec.decode(message, version: version) else { return }
        switch packet.type {
        case .open:
            guard !opened, let text = packet.text, let handshake = try? EngineHandshake(json: text) else { return }
            opened = true
            openTimer?.cancel()
            if version == .v3, let context { startPinging(every: handshake.pingInterval, on: context.eventLoop) }
            session.open()
        case .pong where upgrading != nil:
            guard packet.text == "probe" else { return }
            openTimer?.cancel()
            upgrading?.value.probeAnswered(by: self)
        case .ping:
            // Engine.IO 4: the server pings, the client answers with the same payload.
            sendEngine([EnginePacket(.pong, packet.payload)])
        case .message:
            guard let decoded = (try? codec.decode(packet.payload)) ?? nil else { return }
            session.receive(decoded)
        case .close:
            context?.close(promise: nil)
        default:
            break
        }
    }

    /// Engine.IO 3: the client pings.
    private func startPinging(every milliseconds: Int, on loop: any EventLoop) {
        let bound = NIOLoopBound(self, eventLoop: loop)
        let interval = TimeAmount.milliseconds(Int64(max(100, milliseconds)))
        pingTimer = loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in bound.value.sendEngine([EnginePacket(.ping)]) }
    }

    func send(_ packet: SocketPacket) {
        sendEngine(codec.encode(packet))
    }

    private func sendEngine(_ packets: [EnginePacket]) {
        guard let context, !closing else { return }
        for packet in packets {
            switch EngineIOCodec.encode(packet, version: version) {
            case .text(let text): write(WebSocketFrame(fin: true, opcode: .text, maskKey: maskKey(), data: context.channel.allocator.buffer(string: text)))
            case .binary(let bytes): write(WebSocketFrame(fin: true, opcode: .binary, maskKey: maskKey(), data: context.channel.allocator.buffer(bytes: bytes)))
            }
        }
        context.flush()
    }

    func close() {
        guard let context, !closing else { return }
        if opened { sendEngine([EnginePacket(.close)]) }
        closing = true
        var code = context.channel.allocator.buffer(capacity: 2)
        code.write(webSocketErrorCode: .normalClosure)
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: maskKey(), data: code)))
            .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    private func write(_ frame: WebSocketFrame) {
        context?.write(wrapOutboundOut(frame), promise: nil)
    }

    private func maskKey() -> WebSocketMaskingKey {
        WebSocketMaskingKey.random(using: &random)
    }
}

extension WebSocketUser {
    /// Opens a user's WebSocket on `loop` and starts its play; false when no session came of it
    /// (the session is then already reported ended).
    static func connect(
        host: String, port: Int, uri: String, tls: TLSClientSettings?, loop: any EventLoop, script: UserScript,
        makeSession: @escaping @Sendable () -> UserSession
    ) async -> Bool {
        let seed = UInt64.random(in: .min ... .max)
        do {
            let outcome = try await WebSocketClient.dial(
                host: host, port: port, uri: uri, headers: [:], eventLoop: loop, maxMessageSize: largestMessage, tls: tls
            ) { channel in
                let user = WebSocketUser(version: script.engineVersion, parser: script.parser, seed: seed)
                user.attach(makeSession())
                try channel.pipeline.syncOperations.addHandler(user)
            }
            switch outcome {
            case .upgraded: return true
            case .refused(let answer):
                _ = try? await answer.get()
                return false
            }
        } catch {
            return false
        }
    }
}
