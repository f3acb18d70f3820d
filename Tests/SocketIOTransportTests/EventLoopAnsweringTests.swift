import NIOCore
import NIOEmbedded
import NIOHTTP1
import Synchronization
import Testing

@testable import SocketIOTransport

/// Requests answered in the pipeline by an ``EventLoopResponder``, beside the ones that go on to
/// the async side: order kept, limits kept, the client's going away told.
@Suite("Requests answered on the event loop")
struct EventLoopAnsweringTests {
    /// Takes `/fast…` and answers each when the test says, with what the test says.
    final class Responder: EventLoopResponder {
        let waiting = Mutex<[(request: HTTPRequest, answer: EventLoopPromise<HTTPResponse>, closed: EventLoopFuture<Void>)]>([])

        func plan(for head: HTTPRequestHead) -> Void? { head.uri.hasPrefix("/fast") ? () : nil }

        func respond(to request: HTTPRequest, as plan: Void, clientClosed: EventLoopFuture<Void>) -> EventLoopFuture<HTTPResponse> {
            let answer = clientClosed.eventLoop.makePromise(of: HTTPResponse.self)
            waiting.withLock { $0.append((request, answer, clientClosed)) }
            return answer.futureResult
        }

        func next() -> (request: HTTPRequest, answer: EventLoopPromise<HTTPResponse>, closed: EventLoopFuture<Void>)? {
            waiting.withLock { $0.isEmpty ? nil : $0.removeFirst() }
        }
    }

    func makeConnection(_ responder: Responder, maxBody: Int = 1000) throws -> (EmbeddedChannel, ConnectionDeadlines) {
        let channel = EmbeddedChannel()
        try ConnectionPhase.configureHTTP(channel.pipeline.syncOperations)
        let idle = ConnectionDeadlines(channel, limits: .init(keepAlive: .seconds(60), head: .seconds(60), body: .seconds(60)))
        let parts = try channel.pipeline.syncOperations.handler(type: ConnectionPhase.HTTPParts.self)
        try channel.pipeline.syncOperations.addHandler(
            EventLoopAnswering(responder: responder, idle: idle, maxBody: maxBody, remote: "client"), name: ConnectionPhase.eventLoopAnsweringName,
            position: .before(parts)
        )
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, idle)
    }

    func asyncSide(_ channel: EmbeddedChannel) throws -> [HTTPServerRequestPart] {
        var parts: [HTTPServerRequestPart] = []
        while let part = try channel.readInbound(as: ConnectionPhase.Inbound.self) {
            if case .http(let http) = part { parts.append(http) }
        }
        return parts
    }

    func written(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) { text += buffer.readString(length: buffer.readableBytes) ?? "" }
        return text
    }

    @Test("A taken request is answered in the pipeline, with its length and kept alive; the others reach the async side")
    func takenAndPassed() throws {
        let responder = Responder()
        let (channel, idle) = try makeConnection(responder)
        defer { idle.stop() }
        try channel.writeInbound(ByteBuffer(string: "POST /fast?a=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"))
        #expect(try asyncSide(channel).isEmpty)
        let taken = try #require(responder.next())
        #expect(taken.request.uri == "/fast?a=1" && taken.request.body == Array("hello".utf8) && taken.request.remote == "client")
        #expect(taken.request.eventLoop === channel.eventLoop)
        taken.answer.succeed(HTTPResponse(status: .ok, headers: ["Content-Type": "text/plain"], body: Array("ok".utf8)))
        let answer = try written(channel)
        #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n") && answer.contains("Content-Length: 2\r\n") && answer.hasSuffix("\r\n\r\nok"))
        #expect(!answer.lowercased().contains("connection: close") && channel.isActive)

        try channel.writeInbound(ByteBuffer(string: "GET /other HTTP/1.1\r\nHost: x\r\n\r\n"))
        let passed = try asyncSide(channel)
        guard case .head(let head) = passed.first else { Issue.record("no head: \(passed)"); return }
        #expect(head.uri == "/other" && passed.count == 2)
        #expect(responder.next() == nil)
    }

    @Test("Pipelined requests are answered in order, whichever side answers each")
    func pipelinedOrder() throws {
        let responder = Responder()
        let (channel, idle) = try makeConnection(responder)
        defer { idle.stop() }
        try channel.writeInbound(ByteBuffer(string: "GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /fast HTTP/1.1\r\nHost: x\r\n\r\nGET /slow2 HTTP/1.1\r\nHost: x\r\n\r\n"))
        // The first goes to the async side; the second waits for its answer.
        #expect(try asyncSide(channel).count == 2)
        #expect(responder.next() == nil)
        try channel.writeOutbound(ConnectionPhase.Outbound.http(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": "1"]))))
        try channel.writeOutbound(ConnectionPhase.Outbound.http(.body(.byteBuffer(ByteBuffer(string: "1")))))
        try channel.writeOutbound(ConnectionPhase.Outbound.http(.end(nil)))
        let fast = try #require(responder.next())
        #expect(fast.request.uri == "/fast")
        #expect(try asyncSide(channel).isEmpty, "the third waits for the second's answer")
        fast.answer.succeed(HTTPResponse(status: .ok, body: Array("2".utf8)))
        let third = try asyncSide(channel)
        guard case .head(let head) = third.first else { Issue.record("no third request: \(third)"); return }
        #expect(head.uri == "/slow2")
        let answers = try written(channel)
        #expect(answers.hasSuffix("\r\n\r\n1HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2"), "\(answers)")
    }

    @Test("An upgrade and a CONNECT go to the async side even where the responder would take the URL")
    func upgradesPass() throws {
        let responder = Responder()
        let (channel, idle) = try makeConnection(responder)
        defer { idle.stop() }
        try channel.writeInbound(ByteBuffer(string: "GET /fast HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"))
        #expect(try asyncSide(channel).count == 2)
        #expect(responder.next() == nil)
        let (other, otherIdle) = try makeConnection(responder)
        defer { otherIdle.stop() }
        try other.writeInbound(ByteBuffer(string: "CONNECT /fast HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(try asyncSide(other).count == 2)
        #expect(responder.next() == nil)
    }

    @Test("A body over the limit gets a 413 and the connection closes; the responder never sees it")
    func tooLarge() throws {
        let responder = Responder()
        let (channel, idle) = try makeConnection(responder, maxBody: 10)
        defer { idle.stop() }
        try channel.writeInbound(ByteBuffer(string: "POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world"))
        #expect(responder.next() == nil)
        let answer = try written(channel)
        #expect(answer.hasPrefix("HTTP/1.1 413") && answer.lowercased().contains("connection: close"))
        #expect(!channel.isActive)
    }

    @Test("A client that goes away while its request is answered is told to the responder, and nothing is written")
    func clientGoesAway() throws {
        let responder = Responder()
        let (channel, idle) = try makeConnection(responder)
        defer { idle.stop() }
        try channel.writeInbound(ByteBuffer(string: "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n"))
        let taken = try #require(responder.next())
        let told = Mutex(false)
        taken.closed.whenSuccess { told.withLock { $0 = true } }
        #expect(!told.withLock { $0 })
        try channel.close().wait()
        #expect(told.withLock { $0 })
        taken.answer.succeed(HTTPResponse(status: .badGateway, closeConnection: true))
        #expect(try written(channel).isEmpty)
    }
}
