public import NIOCore
import NIOPosix
import TransportCore
import TransportTLS
import HTTPClientTransport

/// Kept-alive raw connections to one server, for ``HTTPRelayFront``: no HTTP codec in their
/// pipelines, only TLS when the server speaks it and a handler that hands the bytes to whichever
/// relay holds the connection. One exchange at a time; a connection goes back after an answer
/// whose framing let it stay open, and is taken only on the loop it lives on.
public final class ByteRelayPool: Sendable {
    public let host: String
    public let port: Int
    public let tls: TLSClientSettings?
    private let idle: IdleConnections<ByteRelayLink>

    /// - Parameter idleTimeout: below the 5 s after which Node and uvicorn close idle connections,
    ///   so a request rarely meets a connection the server is closing (one that does is retried).
    public init(host: String, port: Int, tls: TLSClientSettings?, maxIdle: Int = 512, idleTimeout: TimeAmount = .seconds(4)) {
        self.host = host
        self.port = port
        self.tls = tls
        idle = IdleConnections(capacity: maxIdle, timeout: idleTimeout)
    }

    deinit {
        close()
    }

    /// An idle connection on `loop`, if one is open.
    func takeIdle(on loop: any EventLoop) -> ByteRelayLink? {
        idle.take(on: loop)
    }

    /// A new connection on `loop`.
    func connect(on loop: any EventLoop) -> EventLoopFuture<ByteRelayLink> {
        let tls = self.tls
        return ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try tls.addHandlers(to: channel.pipeline.syncOperations) }
                    try channel.pipeline.syncOperations.addHandler(ByteRelayUpstreamHandler())
                }
            }
            .connect(host: host, port: port)
            .flatMapThrowing { channel in
                let handler = try channel.pipeline.syncOperations.handler(type: ByteRelayUpstreamHandler.self)
                return ByteRelayLink(channel: channel, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop))
            }
    }

    /// Back after a whole answer; closed instead when the pool is full.
    func putBack(_ link: ByteRelayLink) {
        idle.putBack(link)
    }

    /// Closes the idle connections; those in use close when their exchange is done.
    public func close() {
        idle.close()
    }

    /// `METHOD http://host:port/target`, for errors.
    func requestLine(method: String, target: String) -> String {
        HTTPClient.requestLine(method, tls == nil ? "http" : "https", host: host, port: port, target: target)
    }
}

/// One raw upstream connection and its handler.
final class ByteRelayLink: IdleConnection {
    let channel: any Channel
    let handler: NIOLoopBound<ByteRelayUpstreamHandler>

    init(channel: any Channel, handler: NIOLoopBound<ByteRelayUpstreamHandler>) {
        self.channel = channel
        self.handler = handler
    }

    var eventLoop: any EventLoop { channel.eventLoop }
    var isOpen: Bool { channel.isActive }

    func retire() {
        channel.close(promise: nil)
    }
}

/// What the relay holding an upstream connection is told of it, on the loop.
protocol ByteRelayUpstreamOwner: AnyObject {
    func upstreamRead(_ buffer: ByteBuffer)
    func upstreamReadComplete()
    /// The connection ended; `error` is what ended it, if anything did besides the server.
    func upstreamClosed(_ error: (any Error)?)
    /// Whether the client can take more (reading upstream waits while it cannot).
    var clientWritable: Bool { get }
}

/// The upstream end of a raw connection: bytes to the owner, writes from it.
final class ByteRelayUpstreamHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    weak var owner: (any ByteRelayUpstreamOwner)?
    private var context: ChannelHandlerContext?
    private var error: (any Error)?
    private var readHeld = false

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func write(_ buffer: ByteBuffer) {
        context?.write(wrapOutboundOut(buffer), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    func close() {
        owner = nil
        context?.close(promise: nil)
    }

    /// The client drained: reading on may resume.
    func resumeReading() {
        guard readHeld else { return }
        readHeld = false
        context?.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let owner else {
            // Bytes on an idle connection: nothing asked for them, so it cannot be trusted again.
            context.close(promise: nil)
            return
        }
        owner.upstreamRead(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        owner?.upstreamReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if self.error == nil { self.error = error }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let owner = self.owner
        self.owner = nil
        owner?.upstreamClosed(error)
        context.fireChannelInactive()
    }

    func read(context: ChannelHandlerContext) {
        if let owner, !owner.clientWritable {
            readHeld = true
            return
        }
        context.read()
    }
}

@available(*, unavailable)
extension ByteRelayUpstreamHandler: Sendable {}
