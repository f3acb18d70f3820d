public import NIOCore
public import NIOHTTP1
import NIOPosix
import NIOWebSocket
import NIOConcurrencyHelpers

/// What an ``HTTPServer`` asks of the application behind it.
public protocol HTTPServerDelegate: Sendable {
    /// Whether to accept a WebSocket upgrade; headers to add to the 101, or `nil` to refuse (the
    /// request then reaches ``handle(_:)`` as a plain request).
    func shouldUpgrade(_ head: HTTPRequestHead) async -> HTTPHeaders?
    /// Runs an accepted WebSocket until it ends.
    func handleWebSocket(_ connection: WebSocketConnection, head: HTTPRequestHead) async
    /// Answers one request. May wait (a long-poll GET).
    func handle(_ request: HTTPRequest) async -> HTTPResponse
}

/// A delegate that relays WebSockets byte for byte on the event loop (the proxy), rather than
/// taking them as messages.
public protocol WebSocketRelayDelegate: HTTPServerDelegate {
    /// Dials the relay's far side on `eventLoop` (the client connection's, so the relay never
    /// leaves it), or returns `nil` to refuse the upgrade. The server keeps what this returns
    /// with the client's connection: it is attached to that connection once its upgrade is done,
    /// and closed with it otherwise.
    func dialRelay(_ head: HTTPRequestHead, eventLoop: any EventLoop) async -> DialledRelay?
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

/// An HTTP/1.1 server with the typed WebSocket upgrade, over `NIOAsyncChannel`.
public final class HTTPServer: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// Bodies and WebSocket messages above this are refused (413 / close 1009).
        public var maxBodySize: Int

        public init(host: String = "127.0.0.1", port: Int = 0, maxBodySize: Int = 1_000_000) {
            self.host = host
            self.port = port
            self.maxBodySize = maxBodySize
        }
    }

    enum Connection: Sendable {
        case webSocket(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, HTTPRequestHead)
        /// Handed to a ``WebSocketRelayDelegate``, which owns it until it closes.
        case relayed(any Channel)
        /// `refusedUpgrade`: the head of an upgrade request that was refused; NIO's typed
        /// upgrader passes on only the rest of that request.
        case http(NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, refusedUpgrade: HTTPRequestHead?)
    }

    private let channel: NIOAsyncChannel<EventLoopFuture<Connection>, Never>
    private let configuration: Configuration
    /// The address actually bound (the port is chosen by the system when 0 was asked).
    public let localAddress: SocketAddress

    private init(channel: NIOAsyncChannel<EventLoopFuture<Connection>, Never>, configuration: Configuration) throws {
        self.channel = channel
        self.configuration = configuration
        guard let address = channel.channel.localAddress else { throw ChannelError.inappropriateOperationForState }
        self.localAddress = address
    }

    public var port: Int { localAddress.port ?? 0 }

    /// Binds; call ``run(delegate:)`` to serve.
    public static func bind(_ configuration: Configuration, delegate: any HTTPServerDelegate) async throws -> HTTPServer {
        let maxFrame = max(1 << 14, min(Int(UInt32.max), configuration.maxBodySize + 1024))
        let relayDelegate = delegate as? any WebSocketRelayDelegate
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: configuration.host, port: configuration.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let refusedHead = NIOLockedValueBox<HTTPRequestHead?>(nil)
                    // The relay dialled for this connection's upgrade belongs to this connection
                    // alone: nothing a client sends (such as its Sec-WebSocket-Key) finds it again.
                    let dialled = NIOLockedValueBox<DialledRelay?>(nil)
                    let upgrader = NIOTypedWebSocketServerUpgrader<Connection>(
                        maxFrameSize: maxFrame,
                        shouldUpgrade: { channel, head in
                            let eventLoop = channel.eventLoop
                            return eventLoop.makeFutureWithTask {
                                let headers: HTTPHeaders?
                                if let relayDelegate {
                                    var relay = await relayDelegate.dialRelay(head, eventLoop: eventLoop)
                                    if let dialledElsewhere = relay, dialledElsewhere.upstream.eventLoop !== eventLoop {
                                        // Touching it from this loop would trap: refuse the upgrade instead.
                                        dialledElsewhere.upstream.eventLoop.execute { dialledElsewhere.upstream.value.abandon() }
                                        relay = nil
                                    }
                                    if let relay {
                                        dialled.withLockedValue { $0 = relay }
                                        // A client gone before its upgrade completes never gets
                                        // the relay: its upstream closes with it.
                                        channel.closeFuture.whenComplete { _ in
                                            dialled.withLockedValue { $0.take() }?.upstream.value.abandon()
                                        }
                                    }
                                    headers = relay?.responseHeaders
                                } else {
                                    headers = await delegate.shouldUpgrade(head)
                                }
                                if headers == nil { refusedHead.withLockedValue { $0 = head } }
                                return headers
                            }
                        },
                        upgradePipelineHandler: { channel, head in
                            channel.eventLoop.makeCompletedFuture {
                                guard relayDelegate != nil else {
                                    return .webSocket(try NIOAsyncChannel(wrappingChannelSynchronously: channel), head)
                                }
                                guard let relay = dialled.withLockedValue({ $0.take() }) else {
                                    throw ChannelError.inappropriateOperationForState
                                }
                                relay.willAttach(channel, head)
                                do {
                                    try relay.upstream.value.attachClient(to: channel)
                                } catch {
                                    relay.upstream.value.abandon()
                                    throw error
                                }
                                return .relayed(channel)
                            }
                        }
                    )
                    let upgrade = NIOTypedHTTPServerUpgradeConfiguration<Connection>(
                        upgraders: [upgrader],
                        notUpgradingCompletionHandler: { channel in
                            channel.eventLoop.makeCompletedFuture {
                                .http(
                                    try NIOAsyncChannel(wrappingChannelSynchronously: channel),
                                    refusedUpgrade: refusedHead.withLockedValue { $0 }
                                )
                            }
                        }
                    )
                    return try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(
                        configuration: .init(upgradeConfiguration: upgrade)
                    )
                }
            }
        return try HTTPServer(channel: channel, configuration: configuration)
    }

    /// Serves until the listening socket is closed (``close()``) or the task is cancelled.
    public func run(delegate: any HTTPServerDelegate) async {
        let maxBody = configuration.maxBodySize
        try? await withThrowingDiscardingTaskGroup { group in
            try await channel.executeThenClose { inbound in
                for try await connection in inbound {
                    group.addTask {
                        guard let connection = try? await connection.get() else { return }
                        switch connection {
                        case .webSocket(let channel, let head):
                            let remote = channel.channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
                            let (socket, streams) = WebSocketConnection.make(remote: remote, maskOutbound: false)
                            async let running: Void = WebSocketConnection.run(channel, streams: streams, maxMessageSize: maxBody)
                            await delegate.handleWebSocket(socket, head: head)
                            socket.close()
                            await running
                        case .relayed(let channel):
                            try? await channel.closeFuture.get()
                        case .http(let channel, let refusedUpgrade):
                            await Self.serveHTTP(channel, firstHead: refusedUpgrade, delegate: delegate, maxBody: maxBody)
                        }
                    }
                }
            }
        }
    }

    /// Stops listening; connections in progress finish on their own.
    public func close() async {
        try? await channel.channel.close()
    }

    private static func serveHTTP(
        _ channel: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>,
        firstHead: HTTPRequestHead?,
        delegate: any HTTPServerDelegate,
        maxBody: Int
    ) async {
        let remote = channel.channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
        try? await channel.executeThenClose { inbound, outbound in
            if let refused = firstHead {
                // A refused upgrade is a GET without a body, and NIO does not always pass its end
                // on: answer it now, and close, as the JS server does.
                var response = await delegate.handle(HTTPRequest(head: refused, body: [], remote: remote))
                response.closeConnection = true
                try await write(response, version: refused.version, keepAlive: false, to: outbound)
                return
            }
            var head: HTTPRequestHead?
            var body: [UInt8] = []
            var tooLarge = false
            for try await part in inbound {
                switch part {
                case .head(let requestHead):
                    head = requestHead
                    body = []
                    tooLarge = false
                case .body(var buffer):
                    if body.count + buffer.readableBytes > maxBody {
                        tooLarge = true
                    } else if !tooLarge {
                        body += buffer.readBytes(length: buffer.readableBytes) ?? []
                    }
                case .end:
                    guard let requestHead = head else {
                        // An upgrade to a protocol nobody serves: its head never reached us.
                        try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: .badRequest, headers: ["Content-Length": "0", "Connection": "close"])))
                        try await outbound.write(.end(nil))
                        return
                    }
                    let response: HTTPResponse
                    if tooLarge {
                        response = HTTPResponse(status: .payloadTooLarge, headers: ["Content-Type": "text/plain"], body: Array("Payload Too Large".utf8), closeConnection: true)
                    } else {
                        response = await handleUnlessClosed(HTTPRequest(head: requestHead, body: body, remote: remote), on: channel.channel, delegate: delegate)
                    }
                    let keepAlive = requestHead.isKeepAlive && !response.closeConnection
                    try await write(response, version: requestHead.version, keepAlive: keepAlive, to: outbound)
                    head = nil
                    if !keepAlive { return }
                }
            }
        }
    }

    /// Answers a request, cancelling the answer if the client goes away first: a proxy then
    /// drops its upstream request too, as the client's own abort would have.
    private static func handleUnlessClosed(_ request: HTTPRequest, on channel: any Channel, delegate: any HTTPServerDelegate) async -> HTTPResponse {
        let handling = Task { await delegate.handle(request) }
        channel.closeFuture.whenComplete { _ in handling.cancel() }
        return await handling.value
    }

    private static func write(
        _ response: HTTPResponse,
        version: HTTPVersion,
        keepAlive: Bool,
        to outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    ) async throws {
        var headers = response.headers
        headers.replaceOrAdd(name: "Content-Length", value: String(response.body.count))
        if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        try await outbound.write(.head(HTTPResponseHead(version: version, status: response.status, headers: headers)))
        if !response.body.isEmpty { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: response.body)))) }
        try await outbound.write(.end(nil))
    }
}
