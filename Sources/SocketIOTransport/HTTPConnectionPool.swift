import NIOCore
public import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// HTTP/1.1 keep-alive connections to one server, reused one request at a time: the proxy's
/// polling hop (a long-poll and the POSTs beside it each hold one while in flight) and the polling
/// side of siotap's client. A connection goes back to the pool only after a whole answer that
/// lets it stay open; a request whose task is cancelled closes its connection, as the client's own
/// abort would have. WebSocket upgrades never use the pool: each is dialled afresh.
public final class HTTPConnectionPool: Sendable {
    public let host: String
    public let port: Int
    private let maxIdle: Int
    private let idle = Mutex<[PooledConnection]>([])

    /// Idle connections are closed after this: below the 5 s after which Node and uvicorn close
    /// them, so a request rarely meets a connection the server is closing.
    static let idleTimeout = TimeAmount.seconds(4)

    /// TLS to the server (`https://`), when set.
    public let tls: TLSClientSettings?

    public init(host: String, port: Int, maxIdle: Int = 16, tls: TLSClientSettings? = nil) {
        self.host = host
        self.port = port
        self.maxIdle = maxIdle
        self.tls = tls
    }

    deinit {
        for connection in idle.withLock({ $0 }) { connection.retire() }
    }

    /// Sends `head` and `body` and returns the whole response, whatever its status, on an idle
    /// connection or a new one. A request that finds its reused connection closed by the server
    /// before any answer (an idle connection the server timed out) is sent once more on a new one.
    public func send(head: HTTPRequestHead, body: [UInt8], maxResponseSize: Int = 64 << 20) async throws(HTTPClientError) -> HTTPResponse {
        var head = head
        if !head.headers.contains(name: "Host") { head.headers.add(name: "Host", value: HTTPClient.hostHeader(host: host, port: port)) }
        let request = HTTPClient.requestLine(head.method.rawValue, tls == nil ? "http" : "https", host: host, port: port, target: head.uri)
        let exchange = PooledConnection.Exchange(head: head, body: body, maxResponseSize: maxResponseSize, request: request)
        while let reused = takeIdle() {
            switch await reused.send(exchange) {
            case .answered(let response, let keepAlive):
                if keepAlive { putBack(reused) }
                return response
            case .failed(let error, let answered):
                if answered || Task.isCancelled { throw error }
                // Closed before it answered: most likely while idle. Try the next.
            }
        }
        let fresh = try await connect(request: request)
        switch await fresh.send(exchange) {
        case .answered(let response, let keepAlive):
            if keepAlive { putBack(fresh) }
            return response
        case .failed(let error, _):
            throw error
        }
    }

    /// Closes the idle connections; those in use close when their request is done.
    public func close() {
        for connection in idle.withLock({ connections in defer { connections = [] }; return connections }) { connection.retire() }
    }

    private func takeIdle() -> PooledConnection? {
        idle.withLock { connections in
            while let connection = connections.popLast() {
                if connection.isOpen { return connection }
                connection.retire()
            }
            return nil
        }
    }

    private func putBack(_ connection: PooledConnection) {
        let surplus: PooledConnection? = idle.withLock { connections in
            guard connections.count < maxIdle else { return connection }
            connections.append(connection)
            return nil
        }
        guard surplus == nil else {
            connection.retire()
            return
        }
        let use = connection.uses
        connection.eventLoop.scheduleTask(in: Self.idleTimeout) { [weak self] in
            self?.expire(connection, unusedSince: use)
        }
    }

    /// Closes `connection` if it is still idle since its `use`th use.
    private func expire(_ connection: PooledConnection, unusedSince use: Int) {
        let expired = idle.withLock { connections in
            guard connection.uses == use, let index = connections.firstIndex(where: { $0 === connection }) else { return false }
            connections.remove(at: index)
            return true
        }
        if expired { connection.retire() }
    }

    private func connect(request: String) async throws(HTTPClientError) -> PooledConnection {
        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        let tls = self.tls
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls { try tls.addHandlers(to: channel.pipeline.syncOperations) }
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw .unreachable(error, request: request)
        }
        return PooledConnection(channel)
    }
}

/// One kept-alive connection: a task owns its channel (`executeThenClose`) and carries out the
/// exchanges handed to it, one at a time.
final class PooledConnection: Sendable {
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

    private typealias Job = (Exchange, CheckedContinuation<Outcome, Never>)
    private let channel: any Channel
    private let jobs: AsyncStream<Job>.Continuation
    private let useCount = Atomic<Int>(0)

    var eventLoop: any EventLoop { channel.eventLoop }
    /// How many exchanges were handed to it: an idle timer set at one count is stale at another.
    var uses: Int { useCount.load(ordering: .acquiring) }

    init(_ asyncChannel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>) {
        channel = asyncChannel.channel
        let (stream, continuation) = AsyncStream<Job>.makeStream()
        jobs = continuation
        // Unstructured: the connection outlives the request that opened it, and ends with its channel.
        Task {
            try? await asyncChannel.executeThenClose { inbound, outbound in
                var parts = inbound.makeAsyncIterator()
                for await (exchange, done) in stream {
                    let outcome = await Self.carryOut(exchange, parts: &parts, outbound: outbound)
                    done.resume(returning: outcome)
                    guard case .answered(_, keepAlive: true) = outcome else { break }
                }
            }
            continuation.finish()
            // Anything queued after the end is refused rather than left waiting.
            for await (exchange, done) in stream {
                done.resume(returning: .failed(HTTPClientError(.closed, request: exchange.request, detail: "the connection was closed"), answered: false))
            }
        }
    }

    var isOpen: Bool { channel.isActive }

    /// Ends the connection: its task stops taking exchanges and closes the channel.
    func retire() {
        jobs.finish()
        channel.close(promise: nil)
    }

    func send(_ exchange: Exchange) async -> Outcome {
        useCount.add(1, ordering: .releasing)
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if case .terminated = jobs.yield((exchange, continuation)) {
                    continuation.resume(returning: .failed(HTTPClientError(.closed, request: exchange.request, detail: "the connection was closed"), answered: false))
                }
            }
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    /// A failed exchange's error: `.tls` when the TLS handshake failed, `.closed` otherwise.
    private static func failure(_ error: any Error, _ exchange: Exchange) -> HTTPClientError {
        let tls = error is NIOSSLError || error is NIOSSLExtraError || error is BoringSSLError
        return HTTPClientError(tls ? .tls : .closed, request: exchange.request, detail: SocketErrorText.describe(error))
    }

    private static func carryOut(
        _ exchange: Exchange,
        parts: inout NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>
    ) async -> Outcome {
        var request: [HTTPClientRequestPart] = [.head(exchange.head)]
        if !exchange.body.isEmpty { request.append(.body(.byteBuffer(ByteBuffer(bytes: exchange.body)))) }
        request.append(.end(nil))
        // A server may answer (a 204 to a preflight, a 400) and close before the request's end is
        // written: its answer is still read, and counts, not the failed write.
        var writeError: (any Error)?
        do { try await outbound.write(contentsOf: request) } catch { writeError = error }
        var responseHead: HTTPResponseHead?
        var responseBody: [UInt8] = []
        do {
            while let part = try await parts.next() {
                switch part {
                case .head(let received):
                    // 1xx heads other than 101 are followed by the real one.
                    if received.status.code >= 100 && received.status.code < 200 && received.status != .switchingProtocols { continue }
                    responseHead = received
                case .body(var buffer):
                    guard responseBody.count + buffer.readableBytes <= exchange.maxResponseSize else {
                        return .failed(HTTPClientError(.tooLarge, request: exchange.request, detail: "the answer is larger than \(exchange.maxResponseSize) bytes"), answered: true)
                    }
                    responseBody += buffer.readBytes(length: buffer.readableBytes) ?? []
                case .end:
                    guard let responseHead else { continue }
                    let response = HTTPResponse(status: responseHead.status, headers: responseHead.headers, body: responseBody)
                    return .answered(response, keepAlive: responseHead.isKeepAlive && writeError == nil)
                }
            }
        } catch {
            return .failed(failure(error, exchange), answered: responseHead != nil)
        }
        if let writeError, responseHead == nil {
            return .failed(failure(writeError, exchange), answered: false)
        }
        return .failed(HTTPClientError(.closed, request: exchange.request, detail: "the server closed the connection before a whole answer"), answered: responseHead != nil)
    }
}
