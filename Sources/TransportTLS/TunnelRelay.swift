import NIOCore
import NIOPosix
import TransportCore

/// One end of a tunnel: relays bytes between two channels on one event loop, unchanged, both
/// ways (what a forward proxy does for a `CONNECT` it does not intercept). Reads are held while
/// the other side cannot take more; either side's close closes the other.
public final class TunnelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private var context: ChannelHandlerContext?
    private var partner: TunnelHandler?
    /// Bytes the upstream sent before the client was attached (a server that speaks first).
    private var early: [ByteBuffer] = []
    private var readHeld = false
    private var ended = false

    private init() {}

    /// Connects to `host:port` on `eventLoop` (the client connection's), holding what it reads
    /// until ``attachClient(to:at:)``.
    public static func dial(host: String, port: Int, eventLoop: any EventLoop) async throws -> NIOLoopBound<TunnelHandler> {
        try await ClientBootstrap(group: eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = TunnelHandler()
                    try channel.pipeline.syncOperations.addHandler(handler)
                    return NIOLoopBound(handler, eventLoop: channel.eventLoop)
                }
            }
    }

    /// Whether `host:port` takes a TCP connection (one opened and closed at once), within `timeoutSeconds`.
    public static func probe(
        host: String, port: Int, eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next(), timeoutSeconds: Int64 = 10
    ) async throws {
        let channel = try await ClientBootstrap(group: eventLoop).connectTimeout(.seconds(timeoutSeconds)).connect(host: host, port: port).get()
        try? await channel.close()
    }

    /// Puts this upstream end's partner in the client's pipeline at `position` and starts relaying.
    /// Call on the event loop both channels share.
    public func attachClient(to channel: any Channel, at position: ChannelPipeline.SynchronousOperations.Position) throws {
        channel.eventLoop.preconditionInEventLoop()
        let client = TunnelHandler()
        try channel.pipeline.syncOperations.addHandler(client, position: position)
        client.partner = self
        partner = client
        for buffer in early { client.context?.write(NIOAny(buffer), promise: nil) }
        early = []
        client.context?.flush()
        if readHeld {
            readHeld = false
            context?.read()
        }
        if ended || !channel.isActive {
            client.context?.close(promise: nil)
            context?.close(promise: nil)
        }
    }

    /// Closes an upstream end that never got its client.
    public func abandon() {
        if partner == nil { context?.close(promise: nil) }
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if let partner {
            partner.context?.write(wrapOutboundOut(buffer), promise: nil)
        } else {
            early.append(buffer)
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        partner?.context?.flush()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        ended = true
        partner?.context?.close(promise: nil)
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let partner, partner.readHeld {
            partner.readHeld = false
            partner.context?.read()
        }
        context.fireChannelWritabilityChanged()
    }

    public func read(context: ChannelHandlerContext) {
        guard let partner, partner.context?.channel.isWritable ?? false else {
            readHeld = true
            return
        }
        context.read()
    }
}

@available(*, unavailable)
extension TunnelHandler: Sendable {}
