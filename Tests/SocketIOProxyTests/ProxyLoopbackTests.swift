import Foundation
import DemoApps
import FaultInjection
import NIOHTTP1
import SocketIOClient
import SocketIOProtocol
import SocketIOServer
import SocketIOTransport
import Synchronization
import Testing
import TrafficCapture

@testable import SocketIOProxy

/// A `SocketIOProxy` driven from Swift on loopback: siotap's client through it to the built-in
/// conformance server, on every transport plan, and with a fault. (python-socketio, browsers and
/// forward mode drive it in `Tests/interop`.)
@Suite("The proxy on loopback", .serialized)
struct ProxyLoopbackTests {
    /// The records the proxy's sink got, in `seq` order.
    final class Records: Sendable {
        let list = Mutex<[(seq: Int, conn: String?, body: CaptureRecord.Body)]>([])
        func add(_ body: CaptureRecord.Body, conn: String?) -> Int {
            list.withLock { list in
                list.append((list.count + 1, conn, body))
                return list.count
            }
        }
        var bodies: [CaptureRecord.Body] { list.withLock { $0.map(\.body) } }
    }

    func withProxy(faults: [String] = [], forward: Bool = false, maxMessageSize: Int? = nil, _ body: (Int, Records) async throws -> Void) async throws {
        try await withProxy(faults: faults, forward: forward, maxMessageSize: maxMessageSize) { port, _, records in try await body(port, records) }
    }

    /// `body` gets the proxy's port, the server's and the records.
    func withProxy(faults: [String] = [], forward: Bool, maxMessageSize: Int? = nil, _ body: (Int, Int, Records) async throws -> Void) async throws {
        let io = SocketIOServer(configuration: .init(engine: EngineConfiguration(pingInterval: 300, pingTimeout: 1_500)))
        ConformanceApp.install(on: io)
        let serverPort = try await io.start(port: 0)
        let records = Records()
        let plan = faults.isEmpty ? nil : FaultPlan(rules: try faults.map { try FaultRule($0) }, seed: 1)
        // Forward mode here carries plain HTTP only: no certificate is ever asked for.
        let settings = forward ? ForwardSettings(certificates: TLSInterception { name in throw TLSRefused(name: name) }) : nil
        // In forward mode reverse mode's upstream is nobody's: a port nothing listens on, so that
        // traffic sent there by mistake shows.
        var configuration = ProxyConfiguration(listenPort: 0, upstreamPort: forward ? 9 : serverPort, forward: settings, faults: plan)
        if let maxMessageSize { configuration.maxMessageSize = maxMessageSize }
        let proxy = SocketIOProxy(configuration: configuration) { body, conn, _ in records.add(body, conn: conn) }
        let port = try await proxy.start()
        do {
            try await body(port, serverPort, records)
        } catch {
            await proxy.shutdown()
            await io.shutdown()
            throw error
        }
        await proxy.shutdown()
        await io.shutdown()
    }

    func packets(_ bodies: [CaptureRecord.Body]) -> [PacketRecord] {
        bodies.compactMap { if case .packet(let packet) = $0 { packet } else { nil } }
    }

    @Test("Every plan: the client's exchange goes through, and the records say it, session first, close last",
          arguments: [SocketIOClient.TransportPlan.websocket, .polling, .pollingThenUpgrade])
    func relays(plan: SocketIOClient.TransportPlan) async throws {
        try await withProxy { port, records in
            let client = SocketIOClient(host: "127.0.0.1", port: port)
            let handshake = try await client.open(transport: plan)
            guard case .accepted = await client.connect() else {
                Issue.record("refused through the proxy")
                return
            }
            #expect(try await client.emitWithAck("message-with-ack", [.string("through"), .binary([0, 255])]) == [.string("through"), .binary([0, 255])])
            client.close()
            for _ in 0..<200 where !records.bodies.contains(where: { if case .close = $0 { true } else { false } }) {
                try await Task.sleep(for: .milliseconds(20))
            }
            let bodies = records.bodies
            guard case .session(let session)? = bodies.first, case .close? = bodies.last else {
                Issue.record("not a session's records from first to last: \(bodies)")
                return
            }
            #expect(session.sid == handshake.sid)
            #expect(session.transport == (plan == .websocket ? .websocket : .polling))
            let exchanged = packets(bodies)
            #expect(exchanged.contains { $0.dir == .clientToServer && $0.event == "message-with-ack" && $0.id != nil })
            #expect(exchanged.contains { $0.dir == .serverToClient && $0.type.isAck && $0.latencyMilliseconds != nil })
            #expect(Set(exchanged.map(\.transport)) == (plan == .polling ? [.polling] : [.websocket]))
            // Nothing failed to decode. After the client's close packet its last poll is either
            // answered 400 by the server (the session is gone: on the wire, so recorded, and only
            // then) or dropped by the client as it goes (part of its close, no error).
            let closing = bodies.firstIndex { if case .engine(let engine) = $0 { engine.type == .close } else { false } } ?? bodies.endIndex
            let errors = bodies.enumerated().compactMap { index, body -> ErrorRecord? in
                guard case .error(let error) = body else { return nil }
                return index > closing && error.code == .upstreamStatus ? nil : error
            }
            #expect(errors.isEmpty, "\(errors)")
        }
    }

    @Test("Attachments weighing more together than a message may: relayed (the ack comes back), one error each way, and what follows decoded")
    func attachmentsPastTheLimit() async throws {
        try await withProxy(maxMessageSize: 512) { port, records in
            let client = SocketIOClient(host: "127.0.0.1", port: port)
            _ = try await client.open(transport: .websocket)
            guard case .accepted = await client.connect() else {
                Issue.record("refused through the proxy")
                return
            }
            let part = [UInt8](repeating: 7, count: 300)
            #expect(try await client.emitWithAck("message-with-ack", [.binary(part), .binary(part)]) == [.binary(part), .binary(part)])
            #expect(try await client.emitWithAck("message-with-ack", [.string("after")]) == [.string("after")])
            client.close()
            for _ in 0..<200 where !records.bodies.contains(where: { if case .close = $0 { true } else { false } }) {
                try await Task.sleep(for: .milliseconds(20))
            }
            let bodies = records.bodies
            let errors = bodies.compactMap { if case .error(let error) = $0 { error } else { nil } }
            #expect(errors.map(\.code) == ["socketio.attachments_too_large", "socketio.attachments_too_large"])
            #expect(errors.map(\.dir) == [.clientToServer, .serverToClient])
            #expect(errors.allSatisfy { $0.raw?.hasPrefix("52-") == true || $0.raw?.hasPrefix("62-") == true })
            let after = packets(bodies).filter { $0.args?.first == .string("after") }
            #expect(after.map(\.dir) == [.clientToServer, .serverToClient])
        }
    }

    struct TLSRefused: Error {
        let name: String
    }

    /// A polling session through forward mode, as a client configured with an HTTP proxy sends it:
    /// absolute URIs naming the server, which the proxy relays to that host.
    /// Without faults the requests go as bytes (the origin form sent upstream); with one, the
    /// polls through the fault stage.
    @Test("Forward mode: a polling session to the host an absolute URI names, recorded with that target; a fault's cut reaches its own upstream",
          arguments: [false, true])
    func forwardMode(faulty: Bool) async throws {
        try await withProxy(faults: faulty ? ["disconnect,event=cut-me"] : [], forward: true) { port, serverPort, records in
            let pool = HTTPConnectionPool(host: "127.0.0.1", port: port)
            defer { pool.close() }
            let base = "http://127.0.0.1:\(serverPort)/socket.io/?EIO=4&transport=polling"
            func exchange(_ method: HTTPMethod, _ uri: String, _ body: String = "") async throws -> HTTPResponse {
                var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri)
                head.headers.add(name: "Host", value: "127.0.0.1:\(serverPort)")
                return try await pool.send(head: head, body: Array(body.utf8))
            }
            let open = try await exchange(.GET, base)
            let text = String(decoding: open.body, as: UTF8.self)
            #expect(open.status == .ok && text.hasPrefix("0{"), "\(text)")
            guard let sid = try? JSONValue.parse(String(text.dropFirst()))["sid"]?.stringValue else {
                Issue.record("no sid in \(text)")
                return
            }
            let session = base + "&sid=\(sid)"
            #expect(try await exchange(.POST, session, "40").status == .ok)
            let connected = String(decoding: try await exchange(.GET, session).body, as: UTF8.self)
            #expect(connected.hasPrefix("40"), "\(connected)")
            // The fault cuts the conn once this event has gone upstream: the upstream is told the
            // session is over (a close packet on the conn's own upstream, not reverse mode's), so
            // its next poll finds it gone.
            #expect(try await exchange(.POST, session, #"42["cut-me"]"#).status == .ok)
            if !faulty {
                // Ended by the client: a close packet.
                #expect(try await exchange(.POST, session, "1").status == .ok)
            }
            for _ in 0..<200 where !records.bodies.contains(where: { if case .close = $0 { true } else { false } }) {
                try await Task.sleep(for: .milliseconds(10))
            }
            let bodies = records.bodies
            guard case .session(let record)? = bodies.first else {
                Issue.record("no session first: \(bodies)")
                return
            }
            #expect(record.sid == sid)
            #expect(record.target == "127.0.0.1:\(serverPort)")
            #expect(packets(bodies).contains { $0.dir == .clientToServer && $0.event == "cut-me" })
            #expect(bodies.contains { if case .close = $0 { true } else { false } })
            guard faulty else { return }
            #expect(bodies.contains { if case .fault(let fault) = $0 { fault.action == .disconnect } else { false } })
            // Asked at once (a POST is answered at once; the session would also die on its own
            // of its missed pongs, 600 ms on): the server must have been told.
            var gone = false
            let direct = HTTPConnectionPool(host: "127.0.0.1", port: serverPort)
            defer { direct.close() }
            for _ in 0..<5 where !gone {
                let noop = Array(EngineIOCodec.encodePayload([EnginePacket(.noop)], version: .v4).body)
                let answer = try await direct.send(
                    head: HTTPRequestHead(version: .http1_1, method: .POST, uri: "/socket.io/?EIO=4&transport=polling&sid=\(sid)"), body: noop
                )
                gone = answer.status == .badRequest
                if !gone { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(gone, "the server still knows the session the fault cut")
        }
    }

    /// An unsigned token whose claims number it.
    func numberedToken(_ number: Int) -> String {
        func segment(_ json: String) -> String {
            Data(json.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
        }
        return segment(#"{"alg":"HS256","typ":"JWT"}"#) + "." + segment(#"{"n":\#(number)}"#) + ".c2ln"
    }

    /// Each token is inspected apart from the relay, and several can be seen at once (a handshake
    /// carries some, one POST can carry a CONNECT per namespace): their records must still come
    /// in the order the tokens were seen (they once came as their inspections happened to end).
    @Test("Tokens are recorded in the order they were seen: the handshake's, then each CONNECT's of one POST")
    func tokensInOrder() async throws {
        try await withProxy { port, records in
            let pool = HTTPConnectionPool(host: "127.0.0.1", port: port)
            defer { pool.close() }
            var handshake = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/socket.io/?EIO=4&transport=polling&token=\(numberedToken(0))")
            handshake.headers.add(name: "Authorization", value: "Bearer \(numberedToken(1))")
            let open = String(decoding: try await pool.send(head: handshake, body: []).body, as: UTF8.self)
            guard let sid = try? JSONValue.parse(String(open.dropFirst()))["sid"]?.stringValue else {
                Issue.record("no sid in \(open)")
                return
            }
            // Engine.IO v4's payload: packets apart by the record separator.
            let body = (2..<24).map { #"40/n\#($0),{"token":"\#(numberedToken($0))"}"# }.joined(separator: "\u{1e}")
            let post = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/socket.io/?EIO=4&transport=polling&sid=\(sid)")
            #expect(try await pool.send(head: post, body: Array(body.utf8)).status == .ok)
            func seen() -> [Int] {
                records.bodies.compactMap { body -> Int? in
                    guard case .jwt(let jwt) = body else { return nil }
                    return jwt.claims["n"]?.numberValue?.intValue
                }
            }
            for _ in 0..<200 where seen().count < 24 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(seen() == Array(0..<24))
        }
    }

    @Test("A fault drops the server's ack on either transport: the client times out, and the capture says which packet went",
          arguments: [SocketIOClient.TransportPlan.websocket, .polling])
    func dropsAnAck(plan: SocketIOClient.TransportPlan) async throws {
        try await withProxy(faults: ["drop,type=ACK,dir=s2c"]) { port, records in
            let client = SocketIOClient(host: "127.0.0.1", port: port)
            try await client.open(transport: plan)
            _ = await client.connect()
            await #expect(throws: SocketIOClient.ClientError.self) {
                try await client.emitWithAck("message-with-ack", [.string("lost")], timeout: 500)
            }
            client.close()
            let bodies = records.bodies
            let faults = bodies.compactMap { if case .fault(let fault) = $0 { fault } else { nil } }
            #expect(faults.map(\.action) == [.drop])
            #expect(packets(bodies).contains { $0.dir == .serverToClient && $0.type.isAck })
        }
    }
}
