import NIOHTTP1
import SocketIOProtocol
import DemoApps
import SocketIOServer
import SocketIOTransport
import Testing

@testable import SocketIOClient

/// The client's two layers against the built-in conformance server on loopback, on every transport
/// plan and both Engine.IO generations. (Against independent servers, python-socketio on aiohttp
/// and uvicorn and Flask-SocketIO, it runs in `Tests/interop`: `siotap replay` and `siotap bench`.)
@Suite("The Socket.IO client", .serialized)
struct SocketIOClientTests {
    static let plans: [SocketIOClient.TransportPlan] = [.websocket, .polling, .pollingThenUpgrade]

    func withConformanceServer(_ body: (Int) async throws -> Void) async throws {
        let io = SocketIOServer(configuration: .init(engine: EngineConfiguration(pingInterval: 300, pingTimeout: 1_500)))
        ConformanceApp.install(on: io)
        let port = try await io.start(port: 0)
        do {
            try await body(port)
        } catch {
            await io.shutdown()
            throw error
        }
        await io.shutdown()
    }

    @Test("Connect, an event and its echo, an ack, binary, heartbeats, close: on every plan and generation",
          arguments: plans, [EngineIOVersion.v4, .v3])
    func roundTrips(plan: SocketIOClient.TransportPlan, version: EngineIOVersion) async throws {
        try await withConformanceServer { port in
            let client = SocketIOClient(host: "127.0.0.1", port: port, engineVersion: version)
            let handshake = try await client.open(transport: plan)
            #expect(!handshake.sid.isEmpty)
            guard case .accepted = await client.connect() else {
                Issue.record("the namespace refused")
                return
            }
            var events = client.events.makeAsyncIterator()
            client.emit("message", [.string("hello"), try JSONValue.parse("12345678901234567890")])
            var echo = await events.next()
            while echo?.name == "auth" { echo = await events.next() }
            #expect(echo?.name == "message-back")
            #expect(echo?.arguments.map(\.jsonText) == [#""hello""#, "12345678901234567890"])
            let acked = try await client.emitWithAck("message-with-ack", [.binary([1, 2, 3])])
            #expect(acked == [.binary([1, 2, 3])])
            // Outlive a few heartbeats (300 ms): pings answered (v4) or sent (v3), or the server would close.
            try await Task.sleep(for: .milliseconds(900))
            #expect(try await client.emitWithAck("message-with-ack", [.string("still here")]) == [.string("still here")])
            client.close()
            while await events.next() != nil {}
        }
    }

    @Test("Another namespace is refused with the server's message; an ack waited for when the session ends fails with connectionClosed")
    func refusalsAndEnds() async throws {
        try await withConformanceServer { port in
            let client = SocketIOClient(host: "127.0.0.1", port: port)
            try await client.open(transport: .polling)
            guard case .refused(let data) = await client.connect(namespace: "/nowhere") else {
                Issue.record("an unknown namespace was accepted")
                return
            }
            #expect(data?.jsonText == #"{"message":"Invalid namespace"}"#)
            _ = await client.connect()
            let waiting = Task { try await client.emitWithAck("no-such-event", [], timeout: 10_000) }
            try await Task.sleep(for: .milliseconds(100))
            client.close()
            await #expect(throws: SocketIOClient.ClientError.self) { try await waiting.value }
        }
    }

    @Test("Nobody listening is an HTTP client error; an answer that is no handshake is badHandshake")
    func openFailures() async throws {
        let nobody = SocketIOClient(host: "127.0.0.1", port: 1)
        await #expect(throws: HTTPClientError.self) { try await nobody.open(transport: .polling) }

        struct NotEngineIO: HTTPServerDelegate {
            func shouldUpgrade(_ head: HTTPRequestHead) async -> HTTPHeaders? { nil }
            func handleWebSocket(_ connection: WebSocketConnection, head: HTTPRequestHead) async {}
            func handle(_ request: HTTPRequest) async -> HTTPResponse { HTTPResponse(status: .ok, contentType: "text/plain", body: "hello") }
        }
        let server = try await HTTPServer.bind(.init(host: "127.0.0.1", port: 0), delegate: NotEngineIO())
        let serving = Task { await server.run(delegate: NotEngineIO()) }
        defer { serving.cancel() }
        let client = SocketIOClient(host: "127.0.0.1", port: server.port)
        do {
            try await client.open(transport: .polling)
            Issue.record("a plain text answer was taken for a handshake")
        } catch let error as SocketIOClient.ClientError {
            #expect(error.code == .badHandshake)
            #expect(error.description.contains("hello"))
        }
        await server.close()
    }
}
