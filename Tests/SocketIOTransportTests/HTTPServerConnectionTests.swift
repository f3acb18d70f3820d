import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import SocketIOProtocol
import Testing

@testable import HTTPClientTransport
@testable import SocketIOTransport
@testable import TransportCore
@testable import TransportTLS
@testable import WebSocketTransport

/// How ``HTTPServer`` keeps a connection: closed after a quiet keep-alive timeout, never in the
/// middle of a long request, and served on its own event loop when asked.
@Suite("HTTP server connections")
struct HTTPServerConnectionTests {
    /// Answers with the client's address (one per connection); `/slow` answers after 1.6 s; the
    /// `X-On-Loop` header of every answer says whether it was made on the connection's loop.
    struct Delegate: HTTPServerDelegate {
        func shouldUpgrade(_ head: HTTPRequestHead) async -> HTTPHeaders? { nil }
        func handleWebSocket(_ connection: WebSocketConnection, head: HTTPRequestHead) async {}
        func handle(_ request: HTTPRequest) async -> HTTPResponse {
            if request.uri == "/slow" { try? await Task.sleep(for: .milliseconds(1_600)) }
            let onLoop = request.eventLoop?.inEventLoop ?? false
            return HTTPResponse(status: .ok, headers: ["X-On-Loop": String(onLoop)], body: Array(request.remote.utf8))
        }
    }

    func withServer(_ configuration: HTTPServer.Configuration, _ body: (HTTPConnectionPool) async throws -> Void) async throws {
        let server = try await HTTPServer.bind(configuration, delegate: Delegate())
        let serving = Task { await server.run(delegate: Delegate()) }
        // The pool keeps its connections far longer than the server: only the server closes them.
        let pool = HTTPConnectionPool(host: "127.0.0.1", port: server.port, idleTimeout: .seconds(60))
        defer {
            pool.close()
            serving.cancel()
        }
        do {
            try await body(pool)
        } catch {
            await server.close()
            throw error
        }
        await server.close()
    }

    func get(_ pool: HTTPConnectionPool, _ path: String = "/") async throws -> HTTPResponse {
        let response = try await pool.send(head: HTTPRequestHead(version: .http1_1, method: .GET, uri: path), body: [])
        #expect(response.status == .ok)
        return response
    }

    func remote(_ pool: HTTPConnectionPool, _ path: String = "/") async throws -> String {
        String(decoding: try await get(pool, path).body, as: UTF8.self)
    }

    @Test("A quiet connection is closed after the keep-alive timeout; one in steady use, or in a long request, is not")
    func keepAliveTimeout() async throws {
        try await withServer(.init(keepAliveTimeout: .milliseconds(800))) { pool in
            // The server cannot have answered the previous request before it began (plus what its
            // handler takes), nor received this one after it returned (less what its handler
            // takes): the most it can have been quiet in between, however late this process's
            // clock readings are (a starved CI machine ran them after the bytes had moved).
            var previousEarliestEnd = ContinuousClock.now
            var previous = try await remote(pool)
            var kept = 0
            // A request every 100 ms for a second: the connection is never quiet for 800 ms. A test
            // process stalled past the timeout may see it closed, rightly: a request is compared
            // with the one before only when the server was surely quiet for well under the timeout.
            func next(_ path: String = "/", takes: Duration = .zero) async throws {
                let started = ContinuousClock.now
                let current = try await remote(pool, path)
                let mostQuiet = (ContinuousClock.now - takes) - previousEarliestEnd
                if mostQuiet < .milliseconds(600) {
                    #expect(current == previous, "quiet at most \(mostQuiet)")
                    kept += 1
                }
                previousEarliestEnd = started + takes
                previous = current
            }
            for _ in 0..<10 {
                try await Task.sleep(for: .milliseconds(100))
                try await next()
            }
            // A request that takes twice the timeout is answered on the same connection, and the
            // connection is kept after it.
            try await next("/slow", takes: .milliseconds(1_600))
            try await next()
            #expect(kept > 0, "the process was stalled for the whole steady use")
            // Quiet for longer than the timeout: the server has closed it, and the pool (which would
            // have kept it a minute) dials a new one.
            try await Task.sleep(for: .milliseconds(1_500))
            #expect(try await remote(pool) != previous)
        }
    }

    @Test("Requests are answered on the connection's event loop only when the server is told to")
    func servesOnEventLoop() async throws {
        try await withServer(.init(servesOnEventLoop: true)) { pool in
            for _ in 0..<3 {
                let response = try await get(pool)
                #expect(response.headers.first(name: "X-On-Loop") == "true")
            }
        }
        try await withServer(.init()) { pool in
            for _ in 0..<3 {
                let response = try await get(pool)
                #expect(response.headers.first(name: "X-On-Loop") == "false")
            }
        }
    }

    /// Echoes every WebSocket message.
    struct EchoDelegate: HTTPServerDelegate {
        func shouldUpgrade(_ head: HTTPRequestHead) async -> HTTPHeaders? { [:] }
        func handleWebSocket(_ connection: WebSocketConnection, head: HTTPRequestHead) async {
            for await message in connection.messages { connection.send(message) }
        }
        func handle(_ request: HTTPRequest) async -> HTTPResponse { HTTPResponse(status: .notFound, headers: [:], body: []) }
    }

    /// Relays every WebSocket to `upstreamPort`, as the proxy does.
    struct RelayDelegate: WebSocketRelayDelegate {
        let upstreamPort: Int
        func handle(_ request: HTTPRequest) async -> HTTPResponse { HTTPResponse(status: .notFound, headers: [:], body: []) }
        func dialRelay(_ head: HTTPRequestHead, from remote: SocketAddress?, eventLoop: any EventLoop) async -> RelayDial {
            let observer = WebSocketRelay.Observer(message: { _, _ in }, oversized: { _, _ in }, malformed: { _, _ in }, ended: { _ in })
            guard
                case .upgraded(let upstream, _) = try? await WebSocketClient.dialRelay(
                    host: "127.0.0.1", port: upstreamPort, uri: head.uri, headers: [:], eventLoop: eventLoop, maxMessageSize: 1 << 20, observer: observer
                )
            else { return .notDialled }
            return .relay(DialledRelay(upstream: upstream, responseHeaders: [:]) { _, _ in })
        }
    }

    @Test("A relayed WebSocket needs no serving task: the server's run ends while the relay goes on carrying messages")
    func relayOutlivesItsTask() async throws {
        let echo = try await HTTPServer.bind(.init(), delegate: EchoDelegate())
        let echoing = Task { await echo.run(delegate: EchoDelegate()) }
        let relay = RelayDelegate(upstreamPort: echo.port)
        let front = try await HTTPServer.bind(.init(servesOnEventLoop: true), delegate: relay)
        let serving = Task { await front.run(delegate: relay) }
        let (client, _, run) = try await WebSocketClient.connect(host: "127.0.0.1", port: front.port, uri: "/", headers: [:], maxMessageSize: 1 << 20)
        let running = Task { await run() }
        var messages = client.messages.makeAsyncIterator()
        // A relay that stops reading would leave `next()` waiting: closed, it returns nil.
        let watchdog = Task {
            try await Task.sleep(for: .seconds(30))
            client.close()
        }
        defer {
            watchdog.cancel()
            client.close()
            running.cancel()
            echoing.cancel()
            serving.cancel()
        }
        client.send(.text("before"))
        #expect(await messages.next() == .text("before"))

        // `run` waits for its connections' tasks: with the listener closed, it ends only if the
        // relayed connection kept none.
        await front.close()
        let ended = await withTaskGroup(of: Bool.self) { group in
            group.addTask { await serving.value; return true }
            group.addTask {
                do { try await Task.sleep(for: .seconds(10)) } catch { return false }
                client.close()  // ends the relay, and so a task that waited for it
                return false
            }
            defer { group.cancelAll() }
            return await group.next()!
        }
        #expect(ended, "the server's run still waits for the relayed connection's task")

        // NIO's async handler, left in the pipeline, must still pass on the relay's reads.
        for index in 0..<20 {
            client.send(.text("after \(index)"))
            #expect(await messages.next() == .text("after \(index)"))
        }
        await echo.close()
    }

    @Test("A relay's upstream keeps none of NIO's frame decoding: no decoder, no error handler, held for a session's life")
    func relayUpstreamHoldsNoFrameDecoding() async throws {
        let echo = try await HTTPServer.bind(.init(), delegate: EchoDelegate())
        let echoing = Task { await echo.run(delegate: EchoDelegate()) }
        defer { echoing.cancel() }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let observer = WebSocketRelay.Observer(message: { _, _ in }, oversized: { _, _ in }, malformed: { _, _ in }, ended: { _ in })
        guard
            case .upgraded(let upstream, _) = try await WebSocketClient.dialRelay(
                host: "127.0.0.1", port: echo.port, uri: "/", headers: [:], eventLoop: loop, maxMessageSize: 1 << 20, observer: observer
            )
        else {
            Issue.record("the echo server did not upgrade")
            return
        }
        // Submitted after the decoder's removal was queued on the same loop, so it runs after it.
        let (relay, decoder, errorHandler) = try await loop.submit {
            let pipeline = upstream.value.context!.channel.pipeline.syncOperations
            defer { upstream.value.context!.close(promise: nil) }
            return (
                (try? pipeline.handler(type: WebSocketRelayHandler.self)) != nil,
                (try? pipeline.handler(type: ByteToMessageHandler<WebSocketFrameDecoder>.self)) != nil,
                (try? pipeline.handler(type: WebSocketProtocolErrorHandler.self)) != nil
            )
        }.get()
        #expect(relay)
        #expect(!decoder, "NIO's frame decoder is still in the relay's upstream pipeline")
        #expect(!errorHandler, "NIO's frame error handler is still in the relay's upstream pipeline")
        await echo.close()
    }

    /// Closes every connection once its first bytes (a request) have come.
    final class HangUp: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.close(promise: nil) }
    }

    @Test("A server that hangs up on the upgrade request: the dial says so, not NIO's state error")
    func upgradeHungUp() async throws {
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(HangUp()) } }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { listener.close(promise: nil) }
        let port = listener.localAddress!.port!
        let failure: HTTPClientError? = await {
            do throws(HTTPClientError) {
                _ = try await WebSocketClient.connect(host: "127.0.0.1", port: port, uri: "/", headers: [:], maxMessageSize: 1 << 20)
                return nil
            } catch {
                return error
            }
        }()
        let error = try #require(failure, "a connection closed before any answer made a WebSocket")
        #expect(error.code == .closed)
        #expect(error.detail == "the server closed the connection before answering the upgrade", "\(error)")
    }
}
