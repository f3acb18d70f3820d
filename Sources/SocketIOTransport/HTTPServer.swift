public import NIOCore
public import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import NIOConcurrencyHelpers
import TransportCore
import TransportTLS
import WebSocketTransport
import HTTPClientTransport

/// What an ``HTTPServer`` asks of the application behind it.
public protocol HTTPServerDelegate: Sendable {
    /// Whether to accept a WebSocket upgrade; headers to add to the 101, or `nil` to refuse (the
    /// request then reaches ``handle(_:)`` as a plain request).
    func shouldUpgrade(_ head: HTTPRequestHead) async -> HTTPHeaders?
    /// Runs an accepted WebSocket until it ends.
    func handleWebSocket(_ connection: WebSocketConnection, head: HTTPRequestHead) async
    /// Answers one request. May wait (a long-poll GET).
    func handle(_ request: HTTPRequest) async -> HTTPResponse
    /// Relays some requests as bytes in front of the HTTP codec (see ``HTTPRelayFront``);
    /// `nil` (the default): none.
    var httpRelay: (any HTTPRelayPolicy)? { get }
    /// What to do with `CONNECT host:port` (a forward proxy's tunnel), asked on behalf of the
    /// client at `remote`; the upstream end of a passed tunnel must be on `eventLoop`. Unless
    /// implemented, refused with 405.
    func tunnel(_ head: HTTPRequestHead, from remote: SocketAddress?, eventLoop: any EventLoop) async -> TunnelPlan
}

extension HTTPServerDelegate {
    public func tunnel(_ head: HTTPRequestHead, from remote: SocketAddress?, eventLoop: any EventLoop) async -> TunnelPlan {
        .refuse(HTTPResponse(status: .methodNotAllowed, headers: ["Content-Type": "text/plain"], body: Array("CONNECT is not served here\n".utf8), closeConnection: true))
    }
}

/// The answer to a `CONNECT`.
public enum TunnelPlan: Sendable {
    /// This response instead of a tunnel (a refusal, a 502), and the connection closes.
    case refuse(HTTPResponse)
    /// Bytes relayed as they are, both ways, to this upstream end (dialled on the client's loop).
    case pass(NIOLoopBound<TunnelHandler>)
    /// The client's TLS is ended here (or plain HTTP taken as it comes), and the requests inside
    /// the tunnel are served as any others.
    case intercept(TunnelInterception)
}

/// How an intercepted tunnel is served.
public struct TunnelInterception: Sendable {
    /// The certificates to present, by the name the client asks for.
    public var certificates: TLSInterception
    /// The name presented to a client that sends none (the CONNECT's host).
    public var defaultName: String
    /// Serves the requests that come through the tunnel.
    public var delegate: any HTTPServerDelegate
    /// Told on the event loop once the client's handshake is done.
    public var established: @Sendable (TLSHandshakeDetails) -> Void
    /// Told when the client's handshake fails: its address and why.
    public var handshakeFailed: @Sendable (_ remote: String, _ reason: String) -> Void
    /// Told when the client sends neither TLS nor HTTP through the tunnel (it gets a 400).
    public var unreadable: @Sendable (_ remote: String, _ reason: String) -> Void

    public init(
        certificates: TLSInterception, defaultName: String, delegate: any HTTPServerDelegate,
        established: @escaping @Sendable (TLSHandshakeDetails) -> Void,
        handshakeFailed: @escaping @Sendable (String, String) -> Void,
        unreadable: @escaping @Sendable (String, String) -> Void
    ) {
        self.certificates = certificates
        self.defaultName = defaultName
        self.delegate = delegate
        self.established = established
        self.handshakeFailed = handshakeFailed
        self.unreadable = unreadable
    }
}

/// A delegate that relays WebSockets byte for byte on the event loop (the proxy), rather than
/// taking them as messages.
public protocol WebSocketRelayDelegate: HTTPServerDelegate {
    /// Dials the relay's far side on `eventLoop` (the client connection's, so the relay never
    /// leaves it). The server keeps a dialled relay with the client's connection: it is attached
    /// to that connection once its upgrade is done, and closed with it otherwise.
    /// `remote`: the client's address.
    func dialRelay(_ head: HTTPRequestHead, from remote: SocketAddress?, eventLoop: any EventLoop) async -> RelayDial
}

/// What became of a relay's dial.
public enum RelayDial: Sendable {
    /// Upgraded upstream: the client's upgrade goes ahead.
    case relay(DialledRelay)
    /// The upstream refused the upgrade: its answer goes to the client as it came, and the
    /// connection closes after it.
    case refused(HTTPResponse)
    /// Not dialled (not the delegate's to relay, or unreachable): the request is handled as plain HTTP.
    case notDialled
}

/// The upstream side of a relay, dialled for one client's upgrade.
public struct DialledRelay: Sendable {
    /// The upstream's relay handler, on the client connection's event loop.
    public var upstream: NIOLoopBound<WebSocketRelayHandler>
    /// Headers for the client's 101 (the upstream's subprotocol).
    public var responseHeaders: HTTPHeaders
    /// Called on the event loop once the client's upgrade is done, just before the relay starts.
    public var willAttach: @Sendable (_ client: any Channel, _ head: HTTPRequestHead) -> Void

    public init(
        upstream: NIOLoopBound<WebSocketRelayHandler>,
        responseHeaders: HTTPHeaders,
        willAttach: @escaping @Sendable (_ client: any Channel, _ head: HTTPRequestHead) -> Void
    ) {
        self.upstream = upstream
        self.responseHeaders = responseHeaders
        self.willAttach = willAttach
    }
}

extension WebSocketRelayDelegate {
    public func shouldUpgrade(_ head: HTTPRequestHead) async -> HTTPHeaders? { nil }
    public func handleWebSocket(_ connection: WebSocketConnection, head: HTTPRequestHead) async {}
}

/// An HTTP/1.1 server over `NIOAsyncChannel`: connections are kept alive, and any request of a
/// connection, not only its first, may upgrade it to a WebSocket (see ``ConnectionPhase``).
public final class HTTPServer: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// Bodies and WebSocket messages above this are refused (413 / close 1009).
        public var maxBodySize: Int
        /// Serve TLS (HTTPS and WSS) instead of plain HTTP.
        public var tls: TLSServerSettings?
        /// Which clients are served; `nil`: all.
        public var admits: Admission?
        /// Serve each connection's requests on its event loop's thread (see ``EventLoopTaskExecutor``):
        /// for a delegate whose work per request is short and never blocks, such as a relay.
        public var servesOnEventLoop: Bool
        /// How long a kept-alive connection may wait for its next request (Node's and uvicorn's 5 s).
        public var keepAliveTimeout: TimeAmount
        /// How long a new connection has to send its first request's whole head (TLS handshake
        /// included): a client that sends nothing, or a byte at a time, is closed then.
        public var headTimeout: TimeAmount
        /// How long a request's body may go without a byte before the connection is closed.
        public var bodyTimeout: TimeAmount

        public init(
            host: String = "127.0.0.1", port: Int = 0, maxBodySize: Int = 1_000_000, tls: TLSServerSettings? = nil, admits: Admission? = nil,
            servesOnEventLoop: Bool = false, keepAliveTimeout: TimeAmount = .seconds(5), headTimeout: TimeAmount = .seconds(10),
            bodyTimeout: TimeAmount = .seconds(10)
        ) {
            self.host = host
            self.port = port
            self.maxBodySize = maxBodySize
            self.tls = tls
            self.admits = admits
            self.servesOnEventLoop = servesOnEventLoop
            self.keepAliveTimeout = keepAliveTimeout
            self.headTimeout = headTimeout
            self.bodyTimeout = bodyTimeout
        }
    }

    /// Which clients a server serves; the others get a 403 saying `refusal`, and are closed.
    public struct Admission: Sendable {
        public var admits: @Sendable (_ remote: SocketAddress?) -> Bool
        public var refusal: String

        public init(admits: @escaping @Sendable (SocketAddress?) -> Bool, refusal: String) {
            self.admits = admits
            self.refusal = refusal
        }

        /// Clients on this machine only (127.0.0.0/8, ::1, and IPv4 loopback as IPv6).
        public static func loopbackOnly(refusal: String) -> Admission {
            Admission(
                admits: { address in
                    guard let ip = address?.ipAddress else { return false }
                    return ip.hasPrefix("127.") || ip == "::1" || ip.hasPrefix("::ffff:127.")
                },
                refusal: refusal
            )
        }
    }

    typealias Connection = NIOAsyncChannel<ConnectionPhase.Inbound, ConnectionPhase.Outbound>

    private let channel: NIOAsyncChannel<any Channel, Never>
    private let configuration: Configuration
    /// The address actually bound (the port is chosen by the system when 0 was asked).
    public let localAddress: SocketAddress

    private init(channel: NIOAsyncChannel<any Channel, Never>, configuration: Configuration) throws {
        self.channel = channel
        self.configuration = configuration
        guard let address = channel.channel.localAddress else { throw ChannelError.inappropriateOperationForState }
        self.localAddress = address
    }

    public var port: Int { localAddress.port ?? 0 }

    /// Binds; call ``run(delegate:)`` to serve.
    public static func bind(_ configuration: Configuration, delegate: any HTTPServerDelegate) async throws -> HTTPServer {
        let tls = try configuration.tls.map { settings in (context: try settings.makeContext(), failed: settings.handshakeFailed) }
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(AcceptPause()) }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator.startingSmall)
            // Nothing is read before `serve` wraps the connection (see `accept`).
            .childChannelOption(.autoRead, value: false)
            .bind(host: configuration.host, port: configuration.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.context))
                        try channel.pipeline.syncOperations.addHandler(TLSHandshakeWatcher(failed: tls.failed))
                    }
                    try ConnectionPhase.configureHTTP(channel.pipeline.syncOperations)
                    return channel
                }
            }
        return try HTTPServer(channel: channel, configuration: configuration)
    }

    /// Serves until the listening socket is closed (``close()``) or the task is cancelled.
    public func run(delegate: any HTTPServerDelegate) async {
        let maxBody = configuration.maxBodySize
        let limits = ConnectionDeadlines.Limits(
            keepAlive: configuration.keepAliveTimeout, head: configuration.headTimeout, body: configuration.bodyTimeout
        )
        try? await withThrowingDiscardingTaskGroup { group in
            try await channel.executeThenClose { inbound in
                for try await channel in inbound {
                    let executor = configuration.servesOnEventLoop ? EventLoopTaskExecutor(channel.eventLoop) : nil
                    group.addTask(executorPreference: executor) { [admission = configuration.admits] in
                        if let admission, !admission.admits(channel.remoteAddress) {
                            await Self.turnAway(channel, saying: admission.refusal)
                            return
                        }
                        // A connection that does not finish its request in time is closed, as is a
                        // kept-alive one with no request for a while (as Node's server does).
                        let idle = ConnectionDeadlines(channel, limits: limits)
                        defer { idle.stop() }
                        guard
                            let connection = try? await Self.accept(
                                channel, relay: delegate.httpRelay, idle: idle, maxBody: maxBody
                            )
                        else { return }
                        await Self.serve(connection, delegate: delegate, maxBody: maxBody, idle: idle, executor: executor)
                    }
                }
            }
        }
    }

    /// Wraps an accepted connection for the async side, and only then starts reading. Wrapped in
    /// the child initializer, a connection accepted while the server stops would be dropped
    /// unserved, and NIO traps on an async channel dropped before it was used.
    private static func accept(
        _ channel: any Channel, relay: (any HTTPRelayPolicy)?, idle: ConnectionDeadlines, maxBody: Int
    ) async throws -> Connection {
        try await channel.eventLoop.submit {
            if let relay { try relayBytes(on: channel, with: relay, idle: idle, maxBody: maxBody) }
            let connection = try Connection(wrappingChannelSynchronously: channel)
            channel.setOption(.autoRead, value: true).whenFailure { _ in channel.close(promise: nil) }
            return connection
        }.get()
    }

    /// Puts the byte relay in front of the HTTP codec (behind TLS).
    private static func relayBytes(on channel: any Channel, with policy: any HTTPRelayPolicy, idle: ConnectionDeadlines, maxBody: Int) throws {
        let encoder = try channel.pipeline.syncOperations.handler(type: HTTPResponseEncoder.self)
        try channel.pipeline.syncOperations.addHandler(HTTPRelayFront(policy: policy, idle: idle, maxBody: maxBody), position: .before(encoder))
    }

    /// Answers a client the server does not serve with a 403, before it has read a byte, and closes.
    private static func turnAway(_ channel: any Channel, saying refusal: String) async {
        var response = ByteBuffer()
        HTTPResponse(status: .forbidden, headers: ["Content-Type": "text/plain; charset=utf-8"], body: Array(refusal.utf8)).write(to: &response, keepAlive: false)
        try? await channel.eventLoop.submit { [response] in
            // Past the HTTP encoder (which takes response parts, not bytes): right to the socket, or to TLS.
            let encoder = try channel.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self)
            encoder.writeAndFlush(NIOAny(response)).whenComplete { _ in channel.close(promise: nil) }
        }.get()
    }

    /// Stops listening; connections in progress finish on their own.
    public func close() async {
        try? await channel.channel.close()
    }

    /// What a connection's requests lead to.
    private enum Outcome {
        case keepAlive
        case close
        case upgraded(WebSocketConnection, HTTPRequestHead, WebSocketConnection.Streams)
        case relayed
        /// A CONNECT intercepted: the requests that follow come through the tunnel, for this delegate.
        case tunnelled(any HTTPServerDelegate)
    }

    /// How a connection's serving ended.
    private enum Ending {
        /// Closed, or to be closed now.
        case closed
        /// Handed to a relay in its pipeline (a WebSocket's or a tunnel's), which carries it on and
        /// closes it; the serving task is no longer needed.
        case relayed
        /// Upgraded to the delegate's own WebSocket, served by this task until it ends.
        case webSocket(WebSocketConnection, HTTPRequestHead, WebSocketConnection.Streams, any HTTPServerDelegate)
    }

    /// Serves one connection's requests in order, until it closes or upgrades. Not NIO's scoped
    /// `executeThenClose`: that closes the connection when its body returns, so a relayed
    /// connection (hours long) would keep its serving task (about 7 kB, its stack's slabs) for
    /// nothing but waiting. The streams are taken as they are (``ScopedStreams``) and every ending
    /// but a relay's closes the connection as `executeThenClose` would.
    private static func serve(
        _ connection: Connection, delegate: any HTTPServerDelegate, maxBody: Int, idle: ConnectionDeadlines, executor: EventLoopTaskExecutor?
    ) async {
        let channel = connection.channel
        let (inbound, outbound) = connection.streamsOutlivingTheirTask
        var parts = inbound.makeAsyncIterator()
        let ending = (try? await serveRequests(
            &parts, outbound: outbound, channel: channel, delegate: delegate, maxBody: maxBody, idle: idle, executor: executor
        )) ?? .closed
        switch ending {
        case .closed:
            outbound.finish()
            channel.close(promise: nil)
        case .webSocket(let socket, let head, let streams, let delegate):
            let frames = ConnectionPhase.Frames(parts: parts)
            async let running: Void = WebSocketConnection.run(
                frames: frames, write: { try await outbound.write(.frame($0)) }, stop: { channel.close(promise: nil) },
                streams: streams, maxMessageSize: maxBody
            )
            await delegate.handleWebSocket(socket, head: head)
            socket.close()
            await running
            outbound.finish()
            channel.close(promise: nil)
        case .relayed:
            outbound.finish()
            // NIO's handler at the end of the pipeline passes on the reads the relay asks for only
            // while the inbound stream has an iterator (dropped, it stops reading for good): kept
            // with the connection, unused, until it closes.
            let kept = NIOLoopBoundBox.makeBoxSendingValue(parts, eventLoop: channel.eventLoop)
            channel.closeFuture.whenComplete { _ in withExtendedLifetime(kept) {} }
        }
    }

    private static func serveRequests(
        _ parts: inout NIOAsyncChannelInboundStream<ConnectionPhase.Inbound>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<ConnectionPhase.Outbound>,
        channel: any Channel, delegate: any HTTPServerDelegate, maxBody: Int, idle: ConnectionDeadlines, executor: EventLoopTaskExecutor?
    ) async throws -> Ending {
        var delegate = delegate
        let remote = channel.remoteDescription
        let answering = Answering(channel, executor: executor)
        var head: HTTPRequestHead?
        var body: [UInt8] = []
        var tooLarge = false
        while let part = try await parts.next() {
            guard case .http(let part) = part else { continue }
            switch part {
            case .head(let requestHead):
                idle.requestBegan()
                head = requestHead
                body = []
                tooLarge = false
            case .body(var buffer):
                idle.bodyProgressed()
                if body.count + buffer.readableBytes > maxBody {
                    tooLarge = true
                } else if !tooLarge {
                    body += buffer.readBytes(length: buffer.readableBytes) ?? []
                }
            case .end:
                guard let requestHead = head else { continue }
                head = nil
                idle.requestReceived()
                var request = HTTPRequest(head: requestHead, body: body, remote: remote, eventLoop: channel.eventLoop)
                request.remoteAddress = channel.remoteAddress
                let outcome: Outcome
                if tooLarge {
                    try await write(.payloadTooLarge, version: requestHead.version, keepAlive: false, to: outbound)
                    outcome = .close
                } else if requestHead.method == .CONNECT {
                    outcome = try await apart(on: executor) { [delegate, request] in try await tunnel(request, on: channel, delegate: delegate, outbound: outbound) }
                } else if WebSocketUpgrade.isUpgradeRequest(requestHead) {
                    outcome = try await apart(on: executor) { [delegate, request] in
                        try await upgrade(request, on: channel, remote: remote, delegate: delegate, answering: answering, maxBody: maxBody, outbound: outbound)
                    }
                } else {
                    let response = await answering.answer(request, delegate: delegate)
                    let keepAlive = requestHead.isKeepAlive && !response.closeConnection
                    try await write(response, version: requestHead.version, keepAlive: keepAlive, to: outbound)
                    outcome = keepAlive ? .keepAlive : .close
                }
                switch outcome {
                case .keepAlive:
                    idle.requestEnded()
                case .close:
                    return .closed
                case .tunnelled(let inner):
                    delegate = inner
                    idle.requestEnded()
                case .relayed:
                    return .relayed
                case .upgraded(let socket, let upgradeHead, let streams):
                    return .webSocket(socket, upgradeHead, streams, delegate)
                }
            }
        }
        return .closed
    }

    /// Runs `work` in a child task. A task keeps the memory of its deepest point for as long as it
    /// lives, and a connection's serving task lives as long as the connection (a relayed one for
    /// hours): dialling an upstream goes deep (about 7 kB a connection, kept), its own task does not.
    private static func apart<Result: Sendable>(
        on executor: EventLoopTaskExecutor?, _ work: @escaping @Sendable () async throws -> Result
    ) async throws -> Result {
        try await withThrowingTaskGroup(of: Result.self) { group in
            group.addTask(executorPreference: executor) { try await work() }
            return try await group.next()!
        }
    }

    /// Answers an upgrade request: switches the connection to a WebSocket (the delegate's) or a
    /// relay (a ``WebSocketRelayDelegate``'s), or, refused or not a valid handshake, answers it as
    /// a plain request and closes, as the JS server does (NIO's decoder reads nothing after it).
    private static func upgrade(
        _ request: HTTPRequest,
        on channel: any Channel,
        remote: String,
        delegate: any HTTPServerDelegate,
        answering: Answering,
        maxBody: Int,
        outbound: NIOAsyncChannelOutboundWriter<ConnectionPhase.Outbound>
    ) async throws -> Outcome {
        let head = request.head
        if let accept = WebSocketUpgrade.accept(head) {
            let eventLoop = channel.eventLoop
            if let relayDelegate = delegate as? any WebSocketRelayDelegate {
                switch await relayDelegate.dialRelay(head, from: channel.remoteAddress, eventLoop: eventLoop) {
                case .refused(let response):
                    try await write(response, version: head.version, keepAlive: false, to: outbound)
                    return .close
                case .notDialled:
                    break
                case .relay(let relay):
                    guard relay.upstream.eventLoop === eventLoop else {
                        // Touching it from this loop would trap: refuse the upgrade instead.
                        relay.upstream.eventLoop.execute { relay.upstream.value.abandon() }
                        return try await refuse(request, delegate: delegate, answering: answering, outbound: outbound)
                    }
                    let headers = WebSocketUpgrade.responseHeaders(accept: accept, extra: relay.responseHeaders)
                    do {
                        try await eventLoop.submit {
                            try ConnectionPhase.switchToRelay(channel.pipeline.syncOperations, responseHeaders: headers) { position in
                                relay.willAttach(channel, head)
                                try relay.upstream.value.attachClient(to: channel, at: position)
                            }
                        }.get()
                    } catch {
                        relay.upstream.eventLoop.execute { relay.upstream.value.abandon() }
                        throw error
                    }
                    return .relayed
                }
            } else if let extra = await delegate.shouldUpgrade(head) {
                let headers = WebSocketUpgrade.responseHeaders(accept: accept, extra: extra)
                let maxFrame = max(1 << 14, min(Int(UInt32.max), maxBody + 1024))
                try await eventLoop.submit {
                    try ConnectionPhase.switchToWebSocket(channel.pipeline.syncOperations, responseHeaders: headers, maxFrameSize: maxFrame)
                }.get()
                let (socket, streams) = WebSocketConnection.make(remote: remote, maskOutbound: false)
                return .upgraded(socket, head, streams)
            }
        }
        return try await refuse(request, delegate: delegate, answering: answering, outbound: outbound)
    }

    /// Answers a CONNECT as the delegate says: refused, passed through, or intercepted.
    private static func tunnel(
        _ request: HTTPRequest,
        on channel: any Channel,
        delegate: any HTTPServerDelegate,
        outbound: NIOAsyncChannelOutboundWriter<ConnectionPhase.Outbound>
    ) async throws -> Outcome {
        let eventLoop = channel.eventLoop
        switch await delegate.tunnel(request.head, from: channel.remoteAddress, eventLoop: eventLoop) {
        case .refuse(let response):
            try await write(response, version: request.head.version, keepAlive: false, to: outbound)
            return .close
        case .pass(let upstream):
            guard upstream.eventLoop === eventLoop else {
                upstream.eventLoop.execute { upstream.value.abandon() }
                let response = HTTPResponse(status: .internalServerError, headers: [:], body: [], closeConnection: true)
                try await write(response, version: request.head.version, keepAlive: false, to: outbound)
                return .close
            }
            do {
                try await eventLoop.submit {
                    try ConnectionPhase.switchToTunnel(channel.pipeline.syncOperations) { position in
                        try upstream.value.attachClient(to: channel, at: position)
                    }
                }.get()
            } catch {
                upstream.eventLoop.execute { upstream.value.abandon() }
                throw error
            }
            return .relayed
        case .intercept(let interception):
            try await eventLoop.submit {
                try ConnectionPhase.switchToTunnel(channel.pipeline.syncOperations) { position in
                    try channel.pipeline.syncOperations.addHandler(TunnelProtocolDetector(interception), position: position)
                }
            }.get()
            return .tunnelled(interception.delegate)
        }
    }

    private static func refuse(
        _ request: HTTPRequest,
        delegate: any HTTPServerDelegate,
        answering: Answering,
        outbound: NIOAsyncChannelOutboundWriter<ConnectionPhase.Outbound>
    ) async throws -> Outcome {
        let response = await answering.answer(request, delegate: delegate)
        try await write(response, version: request.head.version, keepAlive: false, to: outbound)
        return .close
    }

    /// The request a connection is answering, cancelled if the client goes away first: a proxy
    /// then drops its upstream request too, as the client's own abort would have. One hook on the
    /// connection's close for all its requests (a kept-alive connection may carry thousands).
    final class Answering: Sendable {
        private let current = NIOLockedValueBox<(task: Task<HTTPResponse, Never>?, closed: Bool)>((nil, false))
        private let executor: EventLoopTaskExecutor?

        init(_ channel: any Channel, executor: EventLoopTaskExecutor?) {
            self.executor = executor
            channel.closeFuture.whenComplete { [current] _ in
                current.withLockedValue { state in
                    state.closed = true
                    return state.task
                }?.cancel()
            }
        }

        func answer(_ request: HTTPRequest, delegate: any HTTPServerDelegate) async -> HTTPResponse {
            let handling = Task(executorPreference: executor) { await delegate.handle(request) }
            let closed = current.withLockedValue { state in
                state.task = handling
                return state.closed
            }
            if closed { handling.cancel() }
            let response = await handling.value
            current.withLockedValue { $0.task = nil }
            return response
        }
    }

    private static func write(
        _ response: HTTPResponse,
        version: HTTPVersion,
        keepAlive: Bool,
        to outbound: NIOAsyncChannelOutboundWriter<ConnectionPhase.Outbound>
    ) async throws {
        var parts: [ConnectionPhase.Outbound] = [.http(.head(response.head(version: version, keepAlive: keepAlive)))]
        if !response.body.isEmpty { parts.append(.http(.body(.byteBuffer(ByteBuffer(bytes: response.body))))) }
        parts.append(.http(.end(nil)))
        try await outbound.write(contentsOf: parts)
    }
}

/// A connection's streams, to be used where NIO's scoped `executeThenClose` cannot be (see
/// `HTTPServer.serve`): NIO marks its accessors deprecated to steer users to the scoped method,
/// and its protocol witness here is how that one place reaches them without the warning.
private protocol ScopedStreams {
    associatedtype In: Sendable
    associatedtype Out: Sendable
    var inbound: NIOAsyncChannelInboundStream<In> { get }
    var outbound: NIOAsyncChannelOutboundWriter<Out> { get }
}

extension NIOAsyncChannel: ScopedStreams {
    typealias In = Inbound
    typealias Out = Outbound
}

extension ScopedStreams {
    fileprivate var streamsOutlivingTheirTask: (NIOAsyncChannelInboundStream<In>, NIOAsyncChannelOutboundWriter<Out>) {
        (inbound, outbound)
    }
}
