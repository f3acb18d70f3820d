#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import NIOCore
public import NIOHTTP1

/// Answers some of a connection's requests on its event loop, before they reach the async side
/// (``HTTPServerDelegate/handle(_:)``): for requests whose answer is a short relay, where the hops
/// between the loop and a task cost more than the work (a proxy's long-polls).
public protocol EventLoopResponder: Sendable {
    /// What the responder learnt from a head it takes, handed back with the whole request.
    associatedtype Plan

    /// Whether this request is answered here, and how; asked on the loop with its head. The
    /// others, and every upgrade or CONNECT, go on to the async side.
    func plan(for head: HTTPRequestHead) -> Plan?
    /// Answers a whole request, on the loop. `clientClosed` succeeds if the client goes away first.
    func respond(to request: HTTPRequest, as plan: Plan, clientClosed: EventLoopFuture<Void>) -> EventLoopFuture<HTTPResponse>
}

/// The requests a connection's ``EventLoopResponder`` takes, gathered and answered in the pipeline,
/// between the HTTP codec and the async side; the others pass through to it. One request at a
/// time: NIO's pipelining handler in front holds the next until this one's answer is written.
final class EventLoopAnswering<Responder: EventLoopResponder>: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        /// The request goes to the async side.
        case passing
        case gathering(HTTPRequestHead, Responder.Plan, body: ByteBuffer, tooLarge: Bool)
        case answering
    }

    private let responder: Responder
    private let idle: ConnectionDeadlines
    private let maxBody: Int
    private let remote: String
    private var state = State.idle
    private var clientClosed: EventLoopPromise<Void>?

    init(responder: Responder, idle: ConnectionDeadlines, maxBody: Int, remote: String) {
        self.responder = responder
        self.idle = idle
        self.maxBody = maxBody
        self.remote = remote
    }

    func handlerAdded(context: ChannelHandlerContext) {
        clientClosed = context.eventLoop.makePromise()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch (state, part) {
        case (.idle, .head(let head)):
            guard head.method != .CONNECT, !WebSocketUpgrade.isUpgradeRequest(head), let plan = responder.plan(for: head) else {
                state = .passing
                context.fireChannelRead(data)
                return
            }
            idle.requestBegan()
            state = .gathering(head, plan, body: context.channel.allocator.buffer(capacity: 0), tooLarge: false)
        case (.gathering(let head, let plan, var body, let tooLarge), .body(var chunk)):
            idle.bodyProgressed()
            state = .answering  // the buffer is unique while it grows
            if tooLarge || body.readableBytes + chunk.readableBytes > maxBody {
                state = .gathering(head, plan, body: body, tooLarge: true)
            } else {
                body.writeBuffer(&chunk)
                state = .gathering(head, plan, body: body, tooLarge: false)
            }
        case (.gathering(let head, let plan, let body, let tooLarge), .end):
            idle.requestReceived()
            state = .answering
            if tooLarge {
                write(.payloadTooLarge, to: head, context: context)
                return
            }
            var request = HTTPRequest(head: head, body: Array(body.readableBytesView), remote: remote, eventLoop: context.eventLoop)
            request.remoteAddress = context.channel.remoteAddress
            let closed = clientClosed?.futureResult ?? context.eventLoop.makeSucceededVoidFuture()
            responder.respond(to: request, as: plan, clientClosed: closed).hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
                let response = (try? result.get()) ?? HTTPResponse(status: .internalServerError, headers: [:], body: [], closeConnection: true)
                self.write(response, to: head, context: context)
            }
        case (.passing, .end):
            state = .idle
            context.fireChannelRead(data)
        case (.passing, _):
            context.fireChannelRead(data)
        default:
            // A part out of order (the codec guarantees none): the async side sorts it out.
            context.fireChannelRead(data)
        }
    }

    /// Writes the answer as the async side's ``HTTPServer`` does, closing after it unless both
    /// sides keep the connection.
    private func write(_ response: HTTPResponse, to head: HTTPRequestHead, context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        if response.resetConnection, let socket = context.channel as? any SocketOptionProvider {
            state = .idle
            let channel = context.channel
            socket.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        let keepAlive = head.isKeepAlive && !response.closeConnection
        context.write(wrapOutboundOut(.head(response.head(version: head.version, keepAlive: keepAlive))), promise: nil)
        if !response.body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))), promise: nil)
        }
        state = .idle
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            idle.requestEnded()
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        clientClosed?.succeed()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // Removed when the connection leaves HTTP (an upgrade): nothing of it is in flight then.
        clientClosed?.succeed()
    }
}
