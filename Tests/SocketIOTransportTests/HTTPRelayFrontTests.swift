import Foundation
import SocketIOProtocol
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing

@testable import HTTPClientTransport
@testable import SocketIOTransport
@testable import TransportCore
@testable import TransportTLS
@testable import WebSocketTransport

/// The byte relay on loopback: a raw client, ``HTTPServer`` with a relay policy, and a scripted
/// upstream that sees and answers bytes, so that every byte each side gets can be checked.
@Suite("HTTP byte relay", .serialized)
struct HTTPRelayFrontTests {
    /// What the policy was told, in order.
    final class Log: Sendable {
        let events = Mutex<[String]>([])
        func add(_ event: String) { events.withLock { $0.append(event) } }
        var all: [String] { events.withLock { $0 } }
    }

    /// The test's exchange: the request's target.
    final class Target {
        let uri: String
        init(_ uri: String) { self.uri = uri }
        static func of(_ exchange: HTTPRelayExchange) -> String { (exchange as! Target).uri }
    }

    /// A capture that is behind until ``open()``: requests wait for admission.
    final class Gate: Sendable {
        let state = Mutex<(open: Bool, waiting: [@Sendable () -> Void])>((false, []))
        func admit(_ resume: @escaping @Sendable () -> Void) -> Bool {
            state.withLock { state in
                if !state.open { state.waiting.append(resume) }
                return state.open
            }
        }
        func open() {
            for resume in state.withLock({ state in state.open = true; defer { state.waiting = [] }; return state.waiting }) { resume() }
        }
    }

    struct Policy: HTTPRelayPolicy {
        let pool: ByteRelayPool
        let log: Log
        var gate: Gate? = nil

        var admission: ReadGate? {
            guard let gate else { return nil }
            return { @Sendable resume in gate.admit(resume) }
        }
        func waitsForCapture(_ request: RelayedRequest) -> Bool { true }

        func route(_ request: RelayedRequest) -> HTTPRelayDecision? {
            guard !request.uri.hasPrefix("/codec") else { return nil }
            log.add("route \(request.method.rawValue) \(request.uri)")
            if request.uri.hasPrefix("/answer") {
                return .answer { [log] request, clientClosed in
                    clientClosed.whenSuccess { log.add("closed \(request.uri)") }
                    let answer = HTTPResponse(status: .ok, headers: ["X-By": "policy"], body: Array("answered \(String(decoding: request.body, as: UTF8.self))".utf8))
                    // `/answer-late` answers only after a while (a long-poll the policy holds).
                    let loop = clientClosed.eventLoop
                    return request.uri.hasPrefix("/answer-late")
                        ? loop.scheduleTask(in: .milliseconds(300)) { answer }.futureResult : loop.makeSucceededFuture(answer)
                }
            }
            return .relay(HTTPRelayRoute(upstream: pool, exchange: Target(request.uri), dropping: ["accept-encoding"], observesBodies: true))
        }

        func requestForwarded(_ exchange: HTTPRelayExchange, body: ByteBuffer) {
            log.add("request \(Target.of(exchange)) \(String(buffer: body))")
        }

        func responseForwarded(_ exchange: HTTPRelayExchange, status: HTTPResponseStatus, headers: [(name: String, value: String)], body: ByteBuffer, truncated: Bool) {
            log.add("response \(Target.of(exchange)) \(status.code) \(String(buffer: body))\(truncated ? " truncated" : "")")
        }

        func upstreamFailed(_ exchange: HTTPRelayExchange, _ error: HTTPClientError, on loop: any EventLoop) -> EventLoopFuture<HTTPResponse> {
            log.add("failed \(Target.of(exchange)) \(error.code.rawValue)")
            return loop.makeSucceededFuture(HTTPResponse(status: .badGateway, headers: ["Content-Type": "text/plain"], body: Array("down".utf8), closeConnection: true))
        }

        func clientWentAway(_ exchange: HTTPRelayExchange) {
            log.add("gone \(Target.of(exchange))")
        }
    }

    struct Delegate: HTTPServerDelegate {
        let policy: Policy
        var httpRelay: (any HTTPRelayPolicy)? { policy }
        func shouldUpgrade(_ head: HTTPRequestHead) async -> HTTPHeaders? { nil }
        func handleWebSocket(_ connection: WebSocketConnection, head: HTTPRequestHead) async {}
        func handle(_ request: HTTPRequest) async -> HTTPResponse {
            HTTPResponse(status: .ok, headers: [:], body: Array("codec \(request.uri) \(request.body.count)".utf8))
        }
    }

    /// A server that reads whole requests (head and Content-Length body) and answers each as
    /// `answer` says: bytes written in pieces, then maybe a close.
    final class Upstream: Sendable {
        struct Answer: Sendable {
            var pieces: [String]
            var close = false
            /// Never answer (a long-poll that outlives its client).
            var hold = false
        }

        let requests = Mutex<[(connection: Int, text: String)]>([])
        /// Every byte that came, whole requests or not.
        let received = Mutex<[UInt8]>([])
        let closed = Mutex<Int>(0)
        /// Answers whose every piece the socket took.
        let written = Mutex<Int>(0)
        let answer: @Sendable (String) -> Answer

        init(answer: @escaping @Sendable (String) -> Answer) {
            self.answer = answer
        }

        func start() async throws -> Int {
            let counter = Mutex(0)
            let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .childChannelInitializer { child in
                    let number = counter.withLock { $0 += 1; return $0 }
                    return child.eventLoop.makeCompletedFuture { try child.pipeline.syncOperations.addHandler(Handler(upstream: self, number: number)) }
                }
                .bind(host: "127.0.0.1", port: 0).get()
            channelBox.withLock { $0 = channel }
            return channel.localAddress!.port!
        }

        let channelBox = Mutex<(any Channel)?>(nil)

        func stop() async {
            try? await channelBox.withLock { $0 }?.close()
        }

        final class Handler: ChannelInboundHandler {
            typealias InboundIn = ByteBuffer
            typealias OutboundOut = ByteBuffer
            let upstream: Upstream
            let number: Int
            var pending: [UInt8] = []

            init(upstream: Upstream, number: Int) {
                self.upstream = upstream
                self.number = number
            }

            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                let bytes = Array(unwrapInboundIn(data).readableBytesView)
                upstream.received.withLock { $0 += bytes }
                pending += bytes
                while let end = pending.withUnsafeBytes({ HTTPFraming.headEnd(in: $0, from: 0) }) {
                    let head = String(decoding: pending[0..<end], as: UTF8.self)
                    let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                        .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                    guard pending.count >= end + length else { return }
                    let text = String(decoding: pending[0..<(end + length)], as: UTF8.self)
                    pending.removeFirst(end + length)
                    upstream.requests.withLock { $0.append((number, text)) }
                    let answer = upstream.answer(text)
                    if answer.hold { continue }
                    let upstream = self.upstream
                    for (index, piece) in answer.pieces.enumerated() {
                        let last = index == answer.pieces.count - 1
                        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: piece))).whenSuccess { if last { upstream.written.withLock { $0 += 1 } } }
                    }
                    if answer.close { context.close(promise: nil) }
                }
            }

            func channelInactive(context: ChannelHandlerContext) {
                upstream.closed.withLock { $0 += 1 }
            }
        }
    }

    /// A raw client: what it sent, all it got, and whether the relay closed it.
    final class Client: Sendable {
        final class Received: Sendable {
            let bytes = Mutex<[UInt8]>([])
        }

        let received = Received()
        let channel: any Channel

        /// `reading: false`: a client that reads nothing until ``startReading()``.
        init(port: Int, reading: Bool = true) async throws {
            let received = self.received
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelOption(.autoRead, value: reading)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Collector(received: received)) }
                }
                .connect(host: "127.0.0.1", port: port).get()
        }

        final class Collector: ChannelInboundHandler {
            typealias InboundIn = ByteBuffer
            let received: Received
            init(received: Received) { self.received = received }
            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                let bytes = Array(unwrapInboundIn(data).readableBytesView)
                received.bytes.withLock { $0 += bytes }
            }
        }

        func startReading() {
            channel.setOption(.autoRead, value: true).whenSuccess { [channel] in channel.read() }
        }

        func send(_ text: String) {
            channel.writeAndFlush(ByteBuffer(string: text), promise: nil)
        }

        var text: String { String(decoding: received.bytes.withLock { $0 }, as: UTF8.self) }

        /// Waits (up to 5 s) until what came satisfies `done`.
        func wait(until done: (String) -> Bool) async throws -> String {
            for _ in 0..<500 {
                if done(text) { return text }
                try await Task.sleep(for: .milliseconds(10))
            }
            Issue.record("waited in vain; got: \(text.debugDescription)")
            return text
        }

        var isClosed: Bool { !channel.isActive }
    }

    func withRelay(
        maxBody: Int = 1000, upstreamPort: Int? = nil, gate: Gate? = nil, answer: @escaping @Sendable (String) -> Upstream.Answer,
        _ body: (Int, Upstream, Log) async throws -> Void
    ) async throws {
        let upstream = Upstream(answer: answer)
        let port = try await upstream.start()
        let log = Log()
        let pool = ByteRelayPool(host: "127.0.0.1", port: upstreamPort ?? port, tls: nil)
        let delegate = Delegate(policy: Policy(pool: pool, log: log, gate: gate))
        let server = try await HTTPServer.bind(.init(host: "127.0.0.1", port: 0, maxBodySize: maxBody, servesOnEventLoop: true), delegate: delegate)
        let serving = Task { await server.run(delegate: delegate) }
        defer { serving.cancel() }
        do {
            try await body(server.port, upstream, log)
        } catch {
            pool.close()
            await server.close()
            await upstream.stop()
            throw error
        }
        pool.close()
        await server.close()
        await upstream.stop()
    }

    static func ok(_ body: String, extra: String = "") -> Upstream.Answer {
        Upstream.Answer(pieces: ["HTTP/1.1 200 OK\r\nX-Custom-CASE: kept\r\nKeep-Alive: timeout=5\r\n\(extra)Content-Length: \(body.utf8.count)\r\n\r\n\(body)"])
    }

    @Test("Requests and answers go as they came, less the hop-by-hop fields, on one kept upstream connection; the policy sees each after it went")
    func relaysBytes() async throws {
        try await withRelay(answer: { _ in Self.ok("pong") }) { port, upstream, log in
            let client = try await Client(port: port)
            let first = "POST /a?x=1 HTTP/1.1\r\nHost: front:1\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nAccept-Encoding: gzip\r\nkeep-ALIVE: 5\r\nX-Mixed-Case: Yes\r\nContent-Length: 5\r\n\r\nhello"
            client.send(first)
            _ = try await client.wait { $0.hasSuffix("pong") }
            client.send("GET /b HTTP/1.1\r\nHost: front:1\r\n\r\n")
            let text = try await client.wait { $0.components(separatedBy: "pong").count == 3 }
            let requests = upstream.requests.withLock { $0 }
            #expect(requests.map(\.text) == [
                "POST /a?x=1 HTTP/1.1\r\nHost: front:1\r\nX-Mixed-Case: Yes\r\nContent-Length: 5\r\n\r\nhello",
                "GET /b HTTP/1.1\r\nHost: front:1\r\n\r\n",
            ])
            #expect(Set(requests.map(\.connection)).count == 1, "one upstream connection for both")
            let answer = "HTTP/1.1 200 OK\r\nX-Custom-CASE: kept\r\nContent-Length: 4\r\n\r\npong"
            #expect(text == answer + answer)
            #expect(log.all == ["route POST /a?x=1", "request /a?x=1 hello", "response /a?x=1 200 pong", "route GET /b", "request /b ", "response /b 200 pong"])
            #expect(!client.isClosed)
        }
    }

    @Test("A request held while the capture is behind goes on once admitted, body so far included, with no more bytes from the client",
          arguments: [false, true])
    func admittedLate(pooled: Bool) async throws {
        let gate = Gate()
        try await withRelay(gate: gate, answer: { _ in Self.ok("late") }) { port, upstream, _ in
            let client = try await Client(port: port)
            if pooled {
                // An upstream connection kept from an earlier request: taken at once, no dial.
                gate.open()
                client.send("GET /warm HTTP/1.1\r\nHost: a\r\n\r\n")
                _ = try await client.wait { $0.hasSuffix("late") }
                gate.state.withLock { $0.open = false }
            }
            let head = "POST /held HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n"
            client.send(head + "12345")
            try await Task.sleep(for: .milliseconds(100))
            #expect(!String(decoding: upstream.received.withLock { $0 }, as: UTF8.self).contains("/held"), "held while the capture is behind")
            gate.open()
            for _ in 0..<300 where !String(decoding: upstream.received.withLock { $0 }, as: UTF8.self).hasSuffix(head + "12345") {
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(String(decoding: upstream.received.withLock { $0 }, as: UTF8.self).hasSuffix(head + "12345"), "the head and the body so far went on")
            client.send("67890")
            _ = try await client.wait { $0.components(separatedBy: "late").count == (pooled ? 3 : 2) }
        }
    }

    @Test("Two requests in one write: answered in order, one at a time")
    func pipelined() async throws {
        try await withRelay(answer: { request in Self.ok(String(request.split(separator: " ")[1])) }) { port, _, log in
            let client = try await Client(port: port)
            client.send("GET /one HTTP/1.1\r\nHost: a\r\n\r\nGET /two HTTP/1.1\r\nHost: a\r\n\r\n")
            let text = try await client.wait { $0.hasSuffix("/two") }
            #expect(text.range(of: "/one")!.lowerBound < text.range(of: "/two")!.lowerBound)
            #expect(log.all.filter { $0.hasPrefix("response") } == ["response /one 200 /one", "response /two 200 /two"])
        }
    }

    @Test("A chunked answer relayed as it came, in pieces; the policy gets its data")
    func chunkedAnswer() async throws {
        let pieces = ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWi", "ki\r\n5\r\npedia\r\n0\r\n", "\r\n"]
        try await withRelay(answer: { _ in Upstream.Answer(pieces: pieces) }) { port, _, log in
            let client = try await Client(port: port)
            client.send("GET /c HTTP/1.1\r\nHost: a\r\n\r\n")
            let text = try await client.wait { $0.hasSuffix("0\r\n\r\n") }
            #expect(text == pieces.joined())
            client.send("GET /d HTTP/1.1\r\nHost: a\r\n\r\n")
            _ = try await client.wait { $0.components(separatedBy: "0\r\n\r\n").count == 3 }
            #expect(log.all.filter { $0.hasPrefix("response") } == ["response /c 200 Wikipedia", "response /d 200 Wikipedia"])
        }
    }

    @Test("An answer without a length ends with the upstream's close, and so does the client's connection")
    func untilClose() async throws {
        try await withRelay(answer: { _ in Upstream.Answer(pieces: ["HTTP/1.1 200 OK\r\n\r\nsome", " more"], close: true) }) { port, _, log in
            let client = try await Client(port: port)
            client.send("GET /u HTTP/1.1\r\nHost: a\r\n\r\n")
            _ = try await client.wait { $0.hasSuffix("more") }
            for _ in 0..<200 where !client.isClosed { try await Task.sleep(for: .milliseconds(10)) }
            #expect(client.isClosed)
            #expect(client.text == "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nsome more")
            #expect(log.all.last == "response /u 200 some more")
        }
    }

    @Test("An upstream connection closed while idle: the next request goes on a new one, unseen by the client")
    func staleConnectionRetried() async throws {
        // The upstream closes each connection after its answer without saying so.
        try await withRelay(answer: { _ in Upstream.Answer(pieces: [Self.ok("x").pieces[0]], close: true) }) { port, upstream, log in
            let client = try await Client(port: port)
            client.send("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")
            _ = try await client.wait { $0.hasSuffix("x") }
            for _ in 0..<200 where upstream.closed.withLock({ $0 }) == 0 { try await Task.sleep(for: .milliseconds(10)) }
            try await Task.sleep(for: .milliseconds(50))
            client.send("GET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
            _ = try await client.wait { $0.components(separatedBy: "\r\n\r\nx").count == 3 }
            #expect(Set(upstream.requests.withLock { $0 }.map(\.connection)).count == 2)
            #expect(!log.all.contains { $0.hasPrefix("failed") })
            #expect(!client.isClosed)
        }
    }

    @Test("A request the relay does not take (chunked) goes to the codec, with the rest of the connection")
    func handsOff() async throws {
        try await withRelay(answer: { _ in Self.ok("relayed") }) { port, upstream, _ in
            let client = try await Client(port: port)
            client.send("GET /r HTTP/1.1\r\nHost: a\r\n\r\n")
            _ = try await client.wait { $0.hasSuffix("relayed") }
            client.send("POST /r HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /r HTTP/1.1\r\nHost: a\r\n\r\n")
            let text = try await client.wait { $0.hasSuffix("codec /r 0") }
            #expect(text.contains("codec /r 3"))
            #expect(upstream.requests.withLock { $0.count } == 1)
        }
    }

    @Test("A request the policy answers: gathered whole, answered, and the connection kept for the next, relayed or not")
    func answeredByPolicy() async throws {
        try await withRelay(answer: { _ in Self.ok("relayed") }) { port, upstream, log in
            try await answered(port: port, upstream: upstream, log: log)
        }
    }

    private func answered(port: Int, upstream: Upstream, log: Log) async throws {
        let client = try await Client(port: port)
        client.send("POST /answer HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhe")
        try await Task.sleep(for: .milliseconds(50))
        let early = client.text
        #expect(early.isEmpty)  // not answered before the whole body came
        client.send("llo")
        _ = try await client.wait { $0.hasSuffix("answered hello") }
        client.send("GET /r HTTP/1.1\r\nHost: a\r\n\r\nPOST /answer HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok")
        let text = try await client.wait { $0.hasSuffix("answered ok") }
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\nX-By: policy\r\nContent-Length: 14\r\n\r\nanswered hello"))
        #expect(text.contains("relayed"))
        let relayed = upstream.requests.withLock { $0.count }
        #expect(relayed == 1)
        let closed = client.isClosed
        #expect(!closed)
        let events = log.all
        #expect(!events.contains { $0.hasPrefix("closed") })
    }

    @Test("A client that leaves while the policy holds its answer: the policy is told")
    func answeringClientGoesAway() async throws {
        try await withRelay(answer: { _ in Self.ok("relayed") }) { port, _, log in
            let client = try await Client(port: port)
            client.send("GET /answer-late HTTP/1.1\r\nHost: a\r\n\r\n")
            try await Task.sleep(for: .milliseconds(50))
            try await client.channel.close()
            for _ in 0..<200 where !log.all.contains("closed /answer-late") { try await Task.sleep(for: .milliseconds(10)) }
            #expect(log.all == ["route GET /answer-late", "closed /answer-late"])
        }
    }

    @Test("An upstream answer head that never ends: the client gets the policy's answer once 16 KiB came, and the connection closes")
    func endlessAnswerHead() async throws {
        let endless = "HTTP/1.1 200 OK\r\n" + String(repeating: "X-Pad: " + String(repeating: "a", count: 1000) + "\r\n", count: 20)
        try await withRelay(answer: { _ in Upstream.Answer(pieces: [endless]) }) { port, _, log in
            let client = try await Client(port: port)
            client.send("GET /h HTTP/1.1\r\nHost: a\r\n\r\n")
            let text = try await client.wait { $0.hasSuffix("down") }
            #expect(text.hasPrefix("HTTP/1.1 502 Bad Gateway\r\n"))
            for _ in 0..<200 where !client.isClosed { try await Task.sleep(for: .milliseconds(10)) }
            #expect(client.isClosed)
            #expect(log.all.contains("failed /h client.closed"))
        }
    }

    @Test("A chunked answer that breaks its framing midway: every byte the server sent reaches the client, then the connection closes, the policy told")
    func brokenChunks() async throws {
        let pieces = ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n", "zz\r\nmore"]
        try await withRelay(answer: { _ in Upstream.Answer(pieces: pieces) }) { port, _, log in
            let client = try await Client(port: port)
            client.send("GET /c HTTP/1.1\r\nHost: a\r\n\r\n")
            for _ in 0..<200 where !client.isClosed { try await Task.sleep(for: .milliseconds(10)) }
            #expect(client.isClosed)
            #expect(client.text == pieces.joined())
            #expect(log.all.contains("failed /c client.closed"))
        }
    }

    @Test("Answers without a body where their length says one: to a HEAD, a 204 and a 304 the next answer follows at once; a 1xx before the real head is not relayed")
    func bodilessAnswers() async throws {
        try await withRelay(answer: { request in
            switch String(request.split(separator: " ")[1]) {
            case "/head": Upstream.Answer(pieces: ["HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"])
            case "/none": Upstream.Answer(pieces: ["HTTP/1.1 204 No Content\r\n\r\n"])
            case "/same": Upstream.Answer(pieces: ["HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n"])
            default: Upstream.Answer(pieces: ["HTTP/1.1 102 Processing\r\n\r\n", Self.ok("late").pieces[0]])
            }
        }) { port, _, log in
            let client = try await Client(port: port)
            client.send("HEAD /head HTTP/1.1\r\nHost: a\r\n\r\nGET /none HTTP/1.1\r\nHost: a\r\n\r\nGET /same HTTP/1.1\r\nHost: a\r\n\r\nGET /info HTTP/1.1\r\nHost: a\r\n\r\n")
            let text = try await client.wait { $0.hasSuffix("late") }
            #expect(text == "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n"
                + "HTTP/1.1 200 OK\r\nX-Custom-CASE: kept\r\nContent-Length: 4\r\n\r\nlate")
            #expect(log.all.filter { $0.hasPrefix("response") } == ["response /head 200 ", "response /none 204 ", "response /same 304 ", "response /info 200 late"])
            #expect(!client.isClosed)
        }
    }

    /// 16 MiB is more than loopback's socket buffers hold here (4 MiB to send, and a receive
    /// window that does not grow while nothing is read, each way): if the relay read
    /// on regardless of the client, it would hold the answer in memory and the server's write
    /// would finish; it must not, until the client reads.
    ///
    /// Opt-in (`SIOTAP_HEAVY_TESTS=1 swift test --filter slowClientHoldsUpstream`): run beside the
    /// whole suite, the 16 MiB held in the kernel's buffers makes the keep-alive timing test of
    /// `HTTPServerConnectionTests` fail every time (alone, both pass); why is not found yet.
    @Test(
        "A client that does not read holds back the upstream: the relay reads no further than the client takes",
        .enabled(if: ProcessInfo.processInfo.environment["SIOTAP_HEAVY_TESTS"] != nil), .timeLimit(.minutes(1))
    )
    func slowClientHoldsUpstream() async throws {
        let size = 16 << 20
        let big = "HTTP/1.1 200 OK\r\nContent-Length: \(size)\r\n\r\n" + String(repeating: "b", count: size)
        try await withRelay(answer: { _ in Upstream.Answer(pieces: [big]) }) { port, upstream, _ in
            let client = try await Client(port: port, reading: false)
            client.send("GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
            try await Task.sleep(for: .milliseconds(1500))
            let heldBack = upstream.written.withLock { $0 } == 0
            #expect(heldBack, "the server wrote 16 MiB to a client that read nothing")
            // Once the client reads, the answer flows again (its first MiB is enough to show it).
            client.startReading()
            for _ in 0..<500 where client.received.bytes.withLock({ $0.count }) < 1 << 20 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(client.received.bytes.withLock { $0.count } >= 1 << 20)
            try await client.channel.close()
        }
    }

    @Test("A body over the limit: 413 before anything goes upstream, and the connection closes")
    func tooLarge() async throws {
        try await withRelay(maxBody: 10, answer: { _ in Self.ok("no") }) { port, upstream, log in
            let client = try await Client(port: port)
            client.send("POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n")
            let text = try await client.wait { $0.hasSuffix("Payload Too Large") }
            #expect(text.hasPrefix("HTTP/1.1 413 Payload Too Large\r\n"))
            for _ in 0..<200 where !client.isClosed { try await Task.sleep(for: .milliseconds(10)) }
            #expect(client.isClosed)
            #expect(upstream.requests.withLock { $0.isEmpty })
            #expect(log.all.isEmpty)
        }
    }

    @Test("No upstream: the policy's answer, and the connection closes")
    func upstreamDown() async throws {
        let closedPort = try await {
            let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
            let port = channel.localAddress!.port!
            try await channel.close()
            return port
        }()
        try await withRelay(upstreamPort: closedPort, answer: { _ in Self.ok("never") }) { port, _, log in
            let client = try await Client(port: port)
            client.send("GET /down HTTP/1.1\r\nHost: a\r\n\r\n")
            let text = try await client.wait { $0.hasSuffix("down") && $0.contains("502") }
            #expect(text.hasPrefix("HTTP/1.1 502 Bad Gateway\r\n"))
            #expect(text.contains("Connection: close\r\n"))
            #expect(log.all.contains("failed /down client.unreachable"))
        }
    }

    @Test("A client that leaves mid-answer: the policy is told, and its upstream connection is closed, not kept")
    func clientGoesAway() async throws {
        try await withRelay(answer: { _ in Upstream.Answer(pieces: [], hold: true) }) { port, upstream, log in
            let client = try await Client(port: port)
            client.send("GET /poll HTTP/1.1\r\nHost: a\r\n\r\n")
            for _ in 0..<200 where upstream.requests.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(10)) }
            try await client.channel.close()
            for _ in 0..<200 where upstream.closed.withLock({ $0 }) == 0 || log.all.count < 3 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(upstream.closed.withLock { $0 } == 1)
            #expect(log.all == ["route GET /poll", "request /poll ", "gone /poll"])
        }
    }
}
