public import NIOCore
public import NIOHTTP1
import NIOPosix
import Synchronization
import TransportCore
import TransportTLS
import WebSocketTransport
import SocketIOProtocol

/// HTTP/1.1 keep-alive connections to one server, reused one request at a time: the proxy's
/// polling hop (a long-poll and the POSTs beside it each hold one while in flight) and the polling
/// side of siotap's client. A connection goes back to the pool only after a whole answer that
/// lets it stay open; a request whose task is cancelled closes its connection, as the client's own
/// abort would have. WebSocket upgrades never use the pool: each is dialled afresh.
public final class HTTPConnectionPool: Sendable {
    public let host: String
    public let port: Int
    private let idle: IdleConnections<PooledConnection>

    /// TLS to the server (`https://`), when set.
    public let tls: TLSClientSettings?

    /// - Parameter idleTimeout: by default 4 s, below the 5 s after which Node and uvicorn close
    ///   idle connections, so a request rarely meets a connection the server is closing.
    public init(host: String, port: Int, maxIdle: Int = 16, idleTimeout: TimeAmount = .seconds(4), tls: TLSClientSettings? = nil) {
        self.host = host
        self.port = port
        idle = IdleConnections(capacity: maxIdle, timeout: idleTimeout)
        self.tls = tls
    }

    deinit {
        close()
    }

    /// Sends `head` and `body` and returns the whole response, whatever its status, on an idle
    /// connection or a new one. A request that finds its reused connection closed by the server
    /// before any answer (an idle connection the server timed out) is sent once more on a new one.
    /// With `eventLoop`, only a connection on that loop is used (a relay serving a client there
    /// then never leaves the loop's thread). Cancelling the task closes the connection in use.
    public func send(
        head: HTTPRequestHead, body: [UInt8], maxResponseSize: Int = 64 << 20, on eventLoop: (any EventLoop)? = nil
    ) async throws(HTTPClientError) -> HTTPResponse {
        let pending = exchange(head: head, body: body, maxResponseSize: maxResponseSize, on: eventLoop)
        do {
            return try await withTaskCancellationHandler {
                try await pending.response.get()
            } onCancel: {
                pending.cancel()
            }
        } catch let error as HTTPClientError {
            throw error
        } catch {
            throw HTTPClientError(.closed, request: pending.request, detail: SocketErrorText.describe(error))
        }
    }

    /// ``send(head:body:maxResponseSize:on:)`` without a task: the answer comes as a future (failed
    /// with an ``HTTPClientError``), for a caller on an event loop.
    public func exchange(
        head: HTTPRequestHead, body: [UInt8], maxResponseSize: Int = 64 << 20, on eventLoop: (any EventLoop)? = nil
    ) -> PendingExchange {
        var head = head
        if !head.headers.contains(name: "Host") { head.headers.add(name: "Host", value: HTTPClient.hostHeader(host: host, port: port)) }
        let request = HTTPClient.requestLine(head.method.rawValue, tls == nil ? "http" : "https", host: host, port: port, target: head.uri)
        let exchange = PooledConnection.Exchange(head: head, body: body, maxResponseSize: maxResponseSize, request: request)
        let pending = PendingExchange(request: request, promise: (eventLoop ?? MultiThreadedEventLoopGroup.singleton.next()).makePromise())
        attempt(exchange, on: eventLoop, pending: pending)
        return pending
    }

    private func attempt(_ exchange: PooledConnection.Exchange, on eventLoop: (any EventLoop)?, pending: PendingExchange) {
        if let reused = idle.take(on: eventLoop) {
            // Closed before it answered: most likely while idle. Try the next.
            carry(exchange, on: reused, pending: pending) { self.attempt(exchange, on: eventLoop, pending: pending) }
            return
        }
        connect(request: exchange.request, on: eventLoop).whenComplete { result in
            switch result {
            case .success(let fresh): self.carry(exchange, on: fresh, pending: pending, ifClosedUnanswered: nil)
            case .failure(let error): pending.promise.fail(HTTPClientError.unreachable(error, request: exchange.request))
            }
        }
    }

    /// One exchange on one connection, put back after a whole answer that lets it stay open.
    private func carry(
        _ exchange: PooledConnection.Exchange, on connection: PooledConnection, pending: PendingExchange,
        ifClosedUnanswered retry: (@Sendable () -> Void)?
    ) {
        guard pending.use(connection) else { return }
        connection.start(exchange).whenSuccess { outcome in
            // Before the connection can carry another exchange: a late cancel() must not close it.
            pending.done()
            switch outcome {
            case .answered(let response, let keepAlive):
                if keepAlive { self.idle.putBack(connection) }
                pending.promise.succeed(response)
            case .failed(let error, let answered):
                if let retry, !answered, !pending.isCancelled { retry() } else { pending.promise.fail(error) }
            }
        }
    }

    /// Closes the idle connections; those in use close when their request is done.
    public func close() {
        idle.close()
    }

    private func connect(request: String, on eventLoop: (any EventLoop)?) -> EventLoopFuture<PooledConnection> {
        let tls = self.tls
        return ClientBootstrap(group: eventLoop ?? MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try tls.addHandlers(to: channel.pipeline.syncOperations) }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(PooledConnection.ExchangeHandler())
                }
            }
            .connect(host: host, port: port)
            .flatMapThrowing { channel in
                let exchanges = try channel.pipeline.syncOperations.handler(type: PooledConnection.ExchangeHandler.self)
                return PooledConnection(channel: channel, exchanges: NIOLoopBound(exchanges, eventLoop: channel.eventLoop))
            }
    }
}

/// An exchange under way: its answer, and a way to drop it (the connection it uses is closed).
public final class PendingExchange: Sendable {
    /// `METHOD http://host:port/path?query`, for errors.
    public let request: String
    let promise: EventLoopPromise<HTTPResponse>
    private let state = Mutex<(connection: PooledConnection?, cancelled: Bool)>((nil, false))

    init(request: String, promise: EventLoopPromise<HTTPResponse>) {
        self.request = request
        self.promise = promise
    }

    /// The whole answer, or an ``HTTPClientError``.
    public var response: EventLoopFuture<HTTPResponse> { promise.futureResult }

    /// Whether ``cancel()`` was called.
    public var isCancelled: Bool { state.withLock { $0.cancelled } }

    /// Notes the connection the exchange goes on; `false` (and the connection closed, the answer
    /// failed) when the exchange was dropped already.
    func use(_ connection: PooledConnection) -> Bool {
        let cancelled = state.withLock { state in
            state.connection = connection
            return state.cancelled
        }
        if cancelled {
            connection.retire()
            promise.fail(HTTPClientError(.closed, request: request, detail: "the request was abandoned"))
        }
        return !cancelled
    }

    /// The exchange is over (answered or failed): its connection is no longer its to close.
    func done() {
        state.withLock { $0.connection = nil }
    }

    /// Drops the exchange: the connection it is on closes, as the client's own abort would have.
    /// After the exchange is over it does nothing (the connection may carry another one by then).
    public func cancel() {
        state.withLock { state in
            state.cancelled = true
            return state.connection
        }?.retire()
    }
}

/// One kept-alive connection, carrying one exchange at a time. The exchange is carried out by a
/// handler on the connection's event loop, and its answer handed back through a promise: a caller
/// on that loop (the proxy) then never leaves it, and no task is kept per connection.
final class PooledConnection: IdleConnection {
    struct Exchange: Sendable {
        var head: HTTPRequestHead
        var body: [UInt8]
        var maxResponseSize: Int
        var request: String
    }

    enum Outcome: Sendable {
        case answered(HTTPResponse, keepAlive: Bool)
        /// `answered`: the server had begun its answer, so the request must not be sent again.
        case failed(HTTPClientError, answered: Bool)
    }

    private let channel: any Channel
    private let exchanges: NIOLoopBound<ExchangeHandler>

    package var eventLoop: any EventLoop { channel.eventLoop }

    init(channel: any Channel, exchanges: NIOLoopBound<ExchangeHandler>) {
        self.channel = channel
        self.exchanges = exchanges
    }

    package var isOpen: Bool { channel.isActive }

    package func retire() {
        channel.close(promise: nil)
    }

    /// Carries out one exchange; the outcome comes on the connection's loop.
    func start(_ exchange: Exchange) -> EventLoopFuture<Outcome> {
        if eventLoop.inEventLoop { return exchanges.value.start(exchange) }
        return eventLoop.flatSubmit { [exchanges] in exchanges.value.start(exchange) }
    }

    /// Writes an exchange's request and gathers its answer, on the event loop.
    final class ExchangeHandler: ChannelInboundHandler {
        typealias InboundIn = HTTPClientResponsePart
        typealias OutboundOut = HTTPClientRequestPart

        private struct Current {
            var exchange: Exchange
            var promise: EventLoopPromise<Outcome>
            var head: HTTPResponseHead?
            var body: [UInt8] = []
            /// A server may answer (a 204 to a preflight, a 400) and close before the request's end
            /// is written: its answer is still read, and counts, not the failed write.
            var writeError: (any Error)?
        }

        private var context: ChannelHandlerContext?
        private var current: Current?
        private var closed = false

        func handlerAdded(context: ChannelHandlerContext) {
            self.context = context
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            self.context = nil
        }

        func start(_ exchange: Exchange) -> EventLoopFuture<Outcome> {
            guard let context, !closed, current == nil else {
                let closed = HTTPClientError(.closed, request: exchange.request, detail: "the connection was closed")
                return (self.context?.eventLoop ?? MultiThreadedEventLoopGroup.singleton.next()).makeSucceededFuture(.failed(closed, answered: false))
            }
            let promise = context.eventLoop.makePromise(of: Outcome.self)
            current = Current(exchange: exchange, promise: promise)
            context.write(wrapOutboundOut(.head(exchange.head)), promise: nil)
            if !exchange.body.isEmpty {
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: exchange.body)))), promise: nil)
            }
            let ended = context.eventLoop.makePromise(of: Void.self)
            ended.futureResult.assumeIsolated().whenFailure { [weak self] error in
                guard let self, self.current?.promise.futureResult === promise.futureResult else { return }
                self.current?.writeError = error
            }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: ended)
            return promise.futureResult
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard var exchange = current else { return }
            switch unwrapInboundIn(data) {
            case .head(let received):
                // 1xx heads other than 101 are followed by the real one.
                if received.status.code >= 100 && received.status.code < 200 && received.status != .switchingProtocols { return }
                exchange.head = received
                current = exchange
            case .body(let buffer):
                guard exchange.body.count + buffer.readableBytes <= exchange.exchange.maxResponseSize else {
                    let detail = "the answer is larger than \(exchange.exchange.maxResponseSize) bytes"
                    finish(.failed(HTTPClientError(.tooLarge, request: exchange.exchange.request, detail: detail), answered: true))
                    context.close(promise: nil)
                    return
                }
                exchange.body.append(contentsOf: buffer.readableBytesView)
                current = exchange
            case .end:
                guard let head = exchange.head else { return }
                let response = HTTPResponse(status: head.status, headers: head.headers, body: exchange.body)
                let keepAlive = head.isKeepAlive && exchange.writeError == nil
                finish(.answered(response, keepAlive: keepAlive))
                if !keepAlive { context.close(promise: nil) }
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            if let exchange = current {
                finish(.failed(Self.failure(error, exchange.exchange), answered: exchange.head != nil))
            }
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            closed = true
            if let exchange = current {
                let error: HTTPClientError
                if let writeError = exchange.writeError, exchange.head == nil {
                    error = Self.failure(writeError, exchange.exchange)
                } else {
                    error = HTTPClientError(.closed, request: exchange.exchange.request, detail: "the server closed the connection before a whole answer")
                }
                finish(.failed(error, answered: exchange.head != nil))
            }
            context.fireChannelInactive()
        }

        private func finish(_ outcome: Outcome) {
            guard let exchange = current else { return }
            current = nil
            exchange.promise.succeed(outcome)
        }

        /// A failed exchange's error: `.tls` when the TLS handshake failed, `.closed` otherwise.
        private static func failure(_ error: any Error, _ exchange: Exchange) -> HTTPClientError {
            let tls = TLSClientSettings.isHandshakeFailure(error)
            return HTTPClientError(tls ? .tls : .closed, request: exchange.request, detail: SocketErrorText.describe(error))
        }
    }
}
