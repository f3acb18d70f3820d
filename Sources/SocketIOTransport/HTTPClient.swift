import NIOCore
public import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// One HTTP/1.1 exchange with an upstream, on a fresh connection (the proxy's upstream hop).
public enum HTTPClient {
    /// Sends `head` and `body` to `host:port` and returns the whole response.
    public static func send(
        host: String,
        port: Int,
        head: HTTPRequestHead,
        body: [UInt8],
        maxResponseSize: Int = 64 << 20
    ) async throws -> HTTPResponse {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(.head(head))
            if !body.isEmpty { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
            try await outbound.write(.end(nil))
            var responseHead: HTTPResponseHead?
            var responseBody: [UInt8] = []
            for try await part in inbound {
                switch part {
                case .head(let received): responseHead = received
                case .body(var buffer):
                    guard responseBody.count + buffer.readableBytes <= maxResponseSize else { throw ChannelError.inputClosed }
                    responseBody += buffer.readBytes(length: buffer.readableBytes) ?? []
                case .end:
                    guard let responseHead else { throw ChannelError.inputClosed }
                    return HTTPResponse(status: responseHead.status, headers: responseHead.headers, body: responseBody)
                }
            }
            throw ChannelError.inputClosed
        }
    }
}

/// A WebSocket client connection (the proxy's upstream hop, and test clients).
public enum WebSocketClient {
    public enum Outcome: Sendable {
        /// Upgraded: the connection and the upstream's 101 headers.
        case upgraded(WebSocketConnection, HTTPHeaders, run: @Sendable () async -> Void)
        /// The server answered without upgrading.
        case refused
    }

    enum Upgrade: Sendable {
        case webSocket(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, HTTPHeaders)
        case refused
    }

    /// Opens a WebSocket to `host:port` at `uri` with the given request headers (the upgrade
    /// headers themselves are added). Call the returned `run` to move frames until it closes.
    public static func connect(
        host: String,
        port: Int,
        uri: String,
        headers: HTTPHeaders,
        maxMessageSize: Int
    ) async throws -> Outcome {
        let upgrade: Upgrade = try await upgrade(
            host: host, port: port, uri: uri, headers: headers, group: MultiThreadedEventLoopGroup.singleton,
            maxMessageSize: maxMessageSize, refused: .refused
        ) { channel, response in
            .webSocket(try NIOAsyncChannel(wrappingChannelSynchronously: channel), response.headers)
        }
        switch upgrade {
        case .refused:
            return .refused
        case .webSocket(let channel, let responseHeaders):
            let remote = channel.channel.remoteAddress?.description ?? "\(host):\(port)"
            let (connection, streams) = WebSocketConnection.make(remote: remote, maskOutbound: true)
            return .upgraded(connection, responseHeaders, run: {
                await WebSocketConnection.run(channel, streams: streams, maxMessageSize: maxMessageSize)
            })
        }
    }

    public enum RelayOutcome: Sendable {
        /// Upgraded: the relay's upstream side, to attach its client to, and the 101's headers.
        case upgraded(NIOLoopBound<WebSocketRelayHandler>, HTTPHeaders)
        case refused
    }

    /// Opens the upstream side of a ``WebSocketRelay`` on `eventLoop`: a WebSocket whose bytes
    /// wait, held, for the client side to be attached.
    public static func dialRelay(
        host: String,
        port: Int,
        uri: String,
        headers: HTTPHeaders,
        eventLoop: any EventLoop,
        maxMessageSize: Int,
        observer: WebSocketRelay.Observer
    ) async throws -> RelayOutcome {
        try await upgrade(
            host: host, port: port, uri: uri, headers: headers, group: eventLoop, maxMessageSize: maxMessageSize, refused: .refused
        ) { channel, response in
            let handler = WebSocketRelayHandler.upstream(observer: observer, maxMessageSize: maxMessageSize)
            try WebSocketRelayHandler.install(handler, in: channel)
            return .upgraded(NIOLoopBound(handler, eventLoop: channel.eventLoop), response.headers)
        }
    }

    /// Connects and asks for the upgrade; `upgraded` sets up the WebSocket pipeline on the event
    /// loop. A server that answers without upgrading gets its connection closed, and `refused`.
    private static func upgrade<Result: Sendable>(
        host: String,
        port: Int,
        uri: String,
        headers: HTTPHeaders,
        group: any EventLoopGroup,
        maxMessageSize: Int,
        refused: Result,
        upgraded: @escaping @Sendable (any Channel, HTTPResponseHead) throws -> Result
    ) async throws -> Result {
        let maxFrame = max(1 << 14, min(Int(UInt32.max), maxMessageSize + 1024))
        let upgrade: EventLoopFuture<Result> = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let upgrader = NIOTypedWebSocketClientUpgrader<Result>(
                        maxFrameSize: maxFrame,
                        upgradePipelineHandler: { channel, response in
                            channel.eventLoop.makeCompletedFuture { try upgraded(channel, response) }
                        }
                    )
                    var requestHeaders = headers
                    requestHeaders.replaceOrAdd(name: "Content-Length", value: "0")
                    let configuration = NIOTypedHTTPClientUpgradeConfiguration<Result>(
                        upgradeRequestHead: HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: requestHeaders),
                        upgraders: [upgrader],
                        notUpgradingCompletionHandler: { channel in
                            channel.eventLoop.makeCompletedFuture {
                                channel.close(promise: nil)
                                return refused
                            }
                        }
                    )
                    // Bytes that follow the 101 in the same segment (an Engine.IO open packet) must not be dropped.
                    var pipeline = NIOUpgradableHTTPClientPipelineConfiguration(upgradeConfiguration: configuration)
                    pipeline.leftOverBytesStrategy = .forwardBytes
                    return try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(configuration: pipeline)
                }
            }
        return try await upgrade.get()
    }
}
