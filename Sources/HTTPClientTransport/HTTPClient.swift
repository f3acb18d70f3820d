import NIOCore
public import NIOHTTP1
import NIOPosix
import NIOWebSocket
import TransportCore
import TransportTLS
import WebSocketTransport
import SocketIOProtocol

/// How siotap's HTTP clients name a request and its `Host`. Requests themselves go through
/// ``HTTPConnectionPool``; WebSockets through ``WebSocketClient``. Redirects are answers like any
/// other: never followed.
public enum HTTPClient {
    /// `GET ws://host:port/path?query`: how a failure names the request.
    public static func requestLine(_ method: String, _ scheme: String, host: String, port: Int, target: String) -> String {
        "\(method) \(scheme)://\(hostHeader(host: host, port: port))\(target)"
    }

    /// `host:port` as a `Host` header says it (IPv6 literals in brackets).
    public static func hostHeader(host: String, port: Int) -> String {
        host.contains(":") && !host.hasPrefix("[") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// A WebSocket client connection (the proxy's upstream hop, and test clients).
public enum WebSocketClient {
    /// Opens a WebSocket to `host:port` at `uri` with the given request headers (`Host` and the
    /// upgrade headers are added). Call the returned `run` to move frames until it closes. Every
    /// frame this side sends is masked, as RFC 6455 asks of clients.
    public static func connect(
        host: String,
        port: Int,
        uri: String,
        headers: HTTPHeaders,
        maxMessageSize: Int,
        tls: TLSClientSettings? = nil
    ) async throws(HTTPClientError) -> (WebSocketConnection, HTTPHeaders, run: @Sendable () async -> Void) {
        let request = HTTPClient.requestLine("GET", tls == nil ? "ws" : "wss", host: host, port: port, target: uri)
        let upgrade: Upgrade = try await upgrade(
            host: host, port: port, uri: uri, headers: headers, group: MultiThreadedEventLoopGroup.singleton,
            maxMessageSize: maxMessageSize, tls: tls, request: request,
            refused: { channel in .refused(try NIOAsyncChannel(wrappingChannelSynchronously: channel)) }
        ) { channel, response in
            .webSocket(try NIOAsyncChannel(wrappingChannelSynchronously: channel), response.headers)
        }
        switch upgrade {
        case .refused(let channel):
            throw await refusal(on: channel, request: request)
        case .webSocket(let channel, let responseHeaders):
            let remote = channel.channel.remoteAddress?.description ?? "\(host):\(port)"
            let (connection, streams) = WebSocketConnection.make(remote: remote, maskOutbound: true)
            return (connection, responseHeaders, {
                try? await channel.executeThenClose { inbound, outbound in
                    await WebSocketConnection.run(
                        frames: inbound, write: { try await outbound.write($0) }, stop: { channel.channel.close(promise: nil) },
                        streams: streams, maxMessageSize: maxMessageSize
                    )
                }
            })
        }
    }

    enum Upgrade: Sendable {
        case webSocket(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, HTTPHeaders)
        case refused(NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>)
    }

    /// Reads the answer that was not a 101 (head and the start of the body) into an error, and
    /// closes the connection.
    private static func refusal(
        on channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>, request: String
    ) async -> HTTPClientError {
        let answer: (HTTPResponseHead?, [UInt8])? = try? await channel.executeThenClose { inbound, _ in
            var head: HTTPResponseHead?
            var body: [UInt8] = []
            reading: for try await part in inbound {
                switch part {
                case .head(let received): head = received
                case .body(var buffer):
                    body += buffer.readBytes(length: min(buffer.readableBytes, 4096 - body.count)) ?? []
                    if body.count >= 4096 { break reading }
                case .end: break reading
                }
            }
            return (head, body)
        }
        guard let (head, body) = answer, let head else {
            return HTTPClientError(.closed, request: request, detail: "the server closed the connection without answering the upgrade")
        }
        return .unexpected(head, body: body, request: request)
    }

    public enum RelayOutcome: Sendable {
        /// Upgraded: the relay's upstream side, to attach its client to, and the 101's headers.
        case upgraded(NIOLoopBound<WebSocketRelayHandler>, HTTPHeaders)
        /// The upstream answered without upgrading: its answer, for the client, once it has come.
        case refused(EventLoopFuture<RefusedUpgrade>)
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
        tls: TLSClientSettings? = nil,
        observer: WebSocketRelay.Observer
    ) async throws(HTTPClientError) -> RelayOutcome {
        try await upgrade(
            host: host, port: port, uri: uri, headers: headers, group: eventLoop, maxMessageSize: maxMessageSize, tls: tls,
            request: HTTPClient.requestLine("GET", tls == nil ? "ws" : "wss", host: host, port: port, target: uri),
            // The relay reads and writes bytes in front of NIO's frame codec: the codec's error
            // handler would never see a frame, and its decoder goes (below), each a few hundred
            // bytes per relayed session for its life.
            frameErrorHandling: false,
            refused: { channel in .refused(try readRefusal(on: channel)) }
        ) { channel, response in
            let handler = WebSocketRelayHandler.upstream(observer: observer, maxMessageSize: maxMessageSize)
            try WebSocketRelayHandler.install(handler, in: channel)
            // Nothing has been read yet, and nothing read from now on passes the relay: the decoder
            // holds no bytes to give up when it is removed.
            let decoder = try channel.pipeline.syncOperations.handler(type: ByteToMessageHandler<WebSocketFrameDecoder>.self)
            channel.pipeline.syncOperations.removeHandler(decoder, promise: nil)
            return .upgraded(NIOLoopBound(handler, eventLoop: channel.eventLoop), response.headers)
        }
    }

    public enum DialOutcome: Sendable {
        /// Upgraded: the channel, with `install`'s handlers behind NIO's frame codec, and the 101's headers.
        case upgraded(any Channel, HTTPHeaders)
        /// The server answered without upgrading: its answer, once it has come.
        case refused(EventLoopFuture<RefusedUpgrade>)
    }

    /// Opens a WebSocket on `eventLoop` whose frames go to the handlers `install` adds (on the
    /// event loop, before any frame is read): a client that lives on the loop with no task of its
    /// own (a load's virtual user).
    public static func dial(
        host: String,
        port: Int,
        uri: String,
        headers: HTTPHeaders,
        eventLoop: any EventLoop,
        maxMessageSize: Int,
        tls: TLSClientSettings? = nil,
        install: @escaping @Sendable (any Channel) throws -> Void
    ) async throws(HTTPClientError) -> DialOutcome {
        try await upgrade(
            host: host, port: port, uri: uri, headers: headers, group: eventLoop, maxMessageSize: maxMessageSize, tls: tls,
            request: HTTPClient.requestLine("GET", tls == nil ? "ws" : "wss", host: host, port: port, target: uri),
            refused: { channel in .refused(try readRefusal(on: channel)) }
        ) { channel, response in
            try install(channel)
            return .upgraded(channel, response.headers)
        }
    }

    /// The answer of a server that did not upgrade, read by a handler once it has come.
    private static func readRefusal(on channel: any Channel) throws -> EventLoopFuture<RefusedUpgrade> {
        let answer = channel.eventLoop.makePromise(of: RefusedUpgrade.self)
        try channel.pipeline.syncOperations.addHandler(RefusalReader(promise: answer))
        return answer.futureResult
    }

    /// Connects and asks for the upgrade; `upgraded` sets up the WebSocket pipeline on the event
    /// loop, `refused` takes a connection whose server answered without upgrading.
    private static func upgrade<Result: Sendable>(
        host: String,
        port: Int,
        uri: String,
        headers: HTTPHeaders,
        group: any EventLoopGroup,
        maxMessageSize: Int,
        tls: TLSClientSettings? = nil,
        request: String,
        frameErrorHandling: Bool = true,
        refused: @escaping @Sendable (any Channel) throws -> Result,
        upgraded: @escaping @Sendable (any Channel, HTTPResponseHead) throws -> Result
    ) async throws(HTTPClientError) -> Result {
        let maxFrame = max(1 << 14, min(Int(UInt32.max), maxMessageSize + 1024))
        var requestHeaders = headers
        if !requestHeaders.contains(name: "Host") { requestHeaders.add(name: "Host", value: HTTPClient.hostHeader(host: host, port: port)) }
        requestHeaders.replaceOrAdd(name: "Content-Length", value: "0")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: requestHeaders)
        let upgrade: EventLoopFuture<Result>
        do {
            upgrade = try await ClientBootstrap(group: group)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator.startingSmall)
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls { try tls.addHandlers(to: channel.pipeline.syncOperations) }
                        let upgrader = NIOTypedWebSocketClientUpgrader<Result>(
                            maxFrameSize: maxFrame,
                            enableAutomaticErrorHandling: frameErrorHandling,
                            upgradePipelineHandler: { channel, response in
                                channel.eventLoop.makeCompletedFuture { try upgraded(channel, response) }
                            }
                        )
                        let configuration = NIOTypedHTTPClientUpgradeConfiguration<Result>(
                            upgradeRequestHead: head,
                            upgraders: [upgrader],
                            notUpgradingCompletionHandler: { channel in
                                channel.eventLoop.makeCompletedFuture { try refused(channel) }
                            }
                        )
                        // Bytes that follow the 101 in the same segment (an Engine.IO open packet) must not be dropped.
                        var pipeline = NIOUpgradableHTTPClientPipelineConfiguration(upgradeConfiguration: configuration)
                        pipeline.leftOverBytesStrategy = .forwardBytes
                        return try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(configuration: pipeline)
                    }
                }
        } catch {
            throw .unreachable(error, request: request)
        }
        do {
            return try await upgrade.get()
        } catch let error as NIOHTTPClientUpgradeError {
            throw HTTPClientError(.badUpgrade, request: request, detail: "the server's 101 is not a valid WebSocket upgrade (\(error))")
        } catch ChannelError.inappropriateOperationForState {
            // What NIO's upgrade handler fails with when the connection goes before the answer.
            throw HTTPClientError(.closed, request: request, detail: "the server closed the connection before answering the upgrade")
        } catch {
            throw HTTPClientError(.closed, request: request, detail: SocketErrorText.describe(error))
        }
    }
}
