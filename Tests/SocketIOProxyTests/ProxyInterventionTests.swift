import DemoApps
import LiveIntervention
import SocketIOClient
import SocketIOProtocol
import SocketIOServer
import Testing
import TrafficCapture

@testable import SocketIOProxy

/// ``LiveControl`` on a `SocketIOProxy` on loopback, siotap's client through it to the built-in
/// conformance server (`message` echoed as `message-back`, `message-with-ack` answered with its
/// arguments), on every transport plan. python-socketio, EIO3 and the official JS client drive the
/// same through the HTTP API in `Tests/interop/test_intervention.py`.
@Suite("Acting on live conns through the proxy", .serialized)
struct ProxyInterventionTests {
    /// The next event of that name the client gets, within 5 s.
    func next(_ name: String, from client: SocketIOClient) async throws -> SocketIOClient.Event {
        let event = await withTaskGroup(of: SocketIOClient.Event?.self) { group in
            group.addTask {
                for await event in client.events where event.name == name { return event }
                return nil
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(5))
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        return try #require(event, "no \(name) within 5 s")
    }

    func eventually(_ condition: () -> Bool) async throws {
        for _ in 0..<250 where !condition() { try await Task.sleep(for: .milliseconds(20)) }
        #expect(condition())
    }

    @Test("An emit each way, an ack answered to the caller alone, a held message edited, and one past the timeout",
          arguments: [SocketIOClient.TransportPlan.websocket, .polling, .pollingThenUpgrade])
    func actsOnALiveConn(plan: SocketIOClient.TransportPlan) async throws {
        let io = SocketIOServer(configuration: .init(engine: EngineConfiguration(pingInterval: 300, pingTimeout: 1_500)))
        ConformanceApp.install(on: io)
        let serverPort = try await io.start(port: 0)
        let records = ProxyLoopbackTests.Records()
        var configuration = ProxyConfiguration(listenPort: 0, upstreamPort: serverPort)
        configuration.intervention = InterventionSettings(breakpoints: ["event=message,dir=c2s"], breakTimeout: 1)
        let proxy = SocketIOProxy(configuration: configuration) { body, conn, _ in records.add(body, conn: conn) }
        let port = try await proxy.start()
        do {
            try await story(proxy: proxy, port: port, plan: plan, records: records)
        } catch {
            await proxy.shutdown()
            await io.shutdown()
            throw error
        }
        await proxy.shutdown()
        await io.shutdown()
    }

    func story(proxy: SocketIOProxy, port: Int, plan: SocketIOClient.TransportPlan, records: ProxyLoopbackTests.Records) async throws {
        let client = SocketIOClient(host: "127.0.0.1", port: port)
        _ = try await client.open(transport: plan)
        guard case .accepted = await client.connect() else {
            Issue.record("refused through the proxy")
            return
        }
        try await eventually { proxy.liveConns().first?.namespaces == ["/"] }
        let conn = try #require(proxy.liveConns().first)
        #expect(conn.transport == plan.final)

        // To the server with an ack: the answer comes back here, and not to the client.
        let asked = try await proxy.emit(EmitRequest(conn: conn.conn, dir: .clientToServer, event: "message-with-ack", args: ["api", .binary([1, 2])], ack: true), by: .api)
        #expect(asked.ack == ["api", .binary([1, 2])])
        // To the client: its event comes.
        _ = try await proxy.emit(EmitRequest(conn: conn.conn, dir: .serverToClient, event: "injected", args: [.object(JSONObject([.init(key: JSONString("n"), value: 1)]))]), by: .api)
        #expect(try await next("injected", from: client).arguments == [.object(JSONObject([.init(key: JSONString("n"), value: 1)]))])

        // Held, edited, let go: the server echoes the edit.
        client.emit("message", ["original"])
        try await eventually { proxy.heldPackets().count == 1 }
        let held = try #require(proxy.heldPackets().first)
        #expect(held.packet.args == ["original"] && held.breakpoint == "b1")
        try await proxy.release(seq: held.seq, args: ["edited"], by: .api)
        #expect(try await next("message-back", from: client).arguments == ["edited"])
        await #expect(throws: LiveControlError.self) { try await proxy.drop(seq: held.seq, by: .api) }

        // Nobody decides: it goes on unchanged after --break-timeout.
        client.emit("message", ["late"])
        #expect(try await next("message-back", from: client).arguments == ["late"])
        client.close()

        try await eventually { records.bodies.contains { if case .close = $0 { true } else { false } } }
        let actions = records.bodies.compactMap { body -> InterventionRecord.Action? in
            if case .intervention(let record) = body { record.action } else { nil }
        }
        #expect(actions == [.emit, .answer, .emit, .hold, .edit, .hold, .timeout])
        let answered = records.bodies.compactMap { body -> PacketRecord? in
            if case .packet(let packet) = body, packet.type.isAck, packet.dir == .serverToClient { packet } else { nil }
        }
        #expect(answered.first?.id == ConnectionGate.firstInjectedAckID)
    }
}
