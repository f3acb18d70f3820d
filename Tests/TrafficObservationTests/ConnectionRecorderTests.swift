import SocketIOProtocol
import Testing

import TrafficCapture
@testable import TrafficObservation

/// The one per-conn recorder the proxy and import share: what it holds, in which order it lets
/// records go, and how a conn ends.
@Suite("The conn recorder")
struct ConnectionRecorderTests {
    static let open = #"0{"sid":"S1","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000}"#

    func kinds(_ stamped: [ConnectionRecorder.Stamped]) -> [String] {
        stamped.map { stamped in
            switch stamped.body {
            case .session(let session): "session sid=\(session.sid ?? "-") parser=\(session.parser.map { "\($0)" } ?? "json")"
            case .engine(let engine): "engine \(engine.type)"
            case .packet(let packet): "packet \(packet.type.name)"
            case .close(let close): "close \(close.reason)"
            default: "other"
            }
        }
    }

    @Test("A handshake: the session record first, with the sid its open packet told; held until the first Socket.IO packet tells the parser")
    func handshake() {
        var recorder = ConnectionRecorder(engineVersion: .v4, parser: nil)
        let session = SessionRecord(url: "/socket.io/?EIO=4&transport=polling", path: "/socket.io/", eio: .v4, transport: .polling)
        let first = recorder.observeHandshake(.pollingBody(Array(Self.open.utf8)), session: session, at: 1)
        #expect(first.records.isEmpty && recorder.isHolding && first.learnedSid == "S1")
        let connect = recorder.observe(.pollingBody(Array("40".utf8)), dir: .clientToServer, at: 2)
        #expect(kinds(connect.records) == ["session sid=S1 parser=json", "engine open", "packet CONNECT"])
        #expect(connect.records.map(\.time) == [1, 1, 2])
        #expect(!recorder.isHolding)
    }

    @Test("A WebSocket-only session with its parser known waits only for its sid")
    func webSocketOnly() {
        var recorder = ConnectionRecorder(engineVersion: .v4, parser: .json)
        let session = SessionRecord(url: "/socket.io/?EIO=4&transport=websocket", path: "/socket.io/", eio: .v4, transport: .websocket)
        #expect(recorder.record(.session(session), at: 1).isEmpty)
        let opened = recorder.observe(.webSocket(.text(Self.open)), dir: .serverToClient, at: 1.1)
        #expect(kinds(opened.records) == ["session sid=S1 parser=json", "engine open"])
    }

    @Test("Held records go after a while, or past a count, as a JSON session's")
    func releasedInTime() {
        var recorder = ConnectionRecorder(engineVersion: .v4, parser: nil)
        _ = recorder.record(.session(SessionRecord(url: "/", path: "/", eio: .v4, transport: .polling, sid: "S")), at: 10)
        #expect(recorder.releaseHeld(now: 10.4, after: 0.5).isEmpty)
        #expect(kinds(recorder.releaseHeld(now: 10.5, after: 0.5)) == ["session sid=S parser=json"])
    }

    @Test("A session record without its sid waits for the open packet longer than the rest, and takes the sid when it comes")
    func waitsForSid() {
        let session = SessionRecord(url: "/socket.io/?EIO=4&transport=websocket", path: "/socket.io/", eio: .v4, transport: .websocket)
        var late = ConnectionRecorder(engineVersion: .v4, parser: nil)
        #expect(late.record(.session(session), at: 10).isEmpty)
        #expect(late.releaseHeld(now: 10.6, after: 0.5).isEmpty)
        #expect(late.observe(.webSocket(.text(Self.open)), dir: .serverToClient, at: 11).records.isEmpty)
        #expect(kinds(late.releaseHeld(now: 11.5, after: 0.5)) == ["session sid=S1 parser=json", "engine open"])
        var never = ConnectionRecorder(engineVersion: .v4, parser: nil)
        _ = never.record(.session(session), at: 10)
        #expect(never.releaseHeld(now: 10 + ConnectionRecorder.sidWait - 0.1, after: 0.5).isEmpty)
        #expect(kinds(never.releaseHeld(now: 10 + ConnectionRecorder.sidWait, after: 0.5)) == ["session sid=- parser=json"])
    }

    @Test("Held records go at once past the most a conn may hold, in number or in bytes")
    func releasedPastBounds() {
        var counted = ConnectionRecorder(engineVersion: .v4, parser: nil)
        let most = ConnectionRecorder.maxHeld.records
        let whileHeld = (0..<most).map { _ in counted.record(.engine(EngineRecord(dir: .serverToClient, transport: .polling, type: .ping, data: nil)), at: 10) }
        // (Booleans taken out first: a failed expectation would print the whole recorder.)
        let heldAll = counted.isHolding
        #expect(whileHeld.allSatisfy(\.isEmpty) && heldAll)
        let past = counted.record(.engine(EngineRecord(dir: .serverToClient, transport: .polling, type: .ping, data: nil)), at: 10)
        let heldPast = counted.isHolding
        #expect(past.count == most + 1 && !heldPast)

        // A peer that sends no Socket.IO, only stray binary messages: each is an error record
        // holding all its bytes (base64), and the first that passes the bound lets them all go.
        var weighed = ConnectionRecorder(engineVersion: .v4, parser: nil)
        let stray = WebSocketMessage.binary(Array(repeating: 0xAB, count: ConnectionRecorder.maxHeld.bytes / 2))
        let first = weighed.observe(.webSocket(stray), dir: .clientToServer, at: 10).records.count
        #expect(first == 0)
        let released = weighed.observe(.webSocket(stray), dir: .clientToServer, at: 10.001).records
        let releasedErrors = released.count == 2 && released.allSatisfy { if case .error = $0.body { true } else { false } }
        let heldStray = weighed.isHolding
        #expect(releasedErrors && !heldStray)
    }

    @Test("A close waits for the requests in flight, keeps the first reason, and nothing comes after it")
    func ending() {
        var recorder = ConnectionRecorder(engineVersion: .v4, parser: .json)
        recorder.begin()
        let packet = recorder.observe(.pollingBody(Array("1".utf8)), dir: .clientToServer, at: 1)
        #expect(packet.closePacketFrom == .client)
        #expect(recorder.close(CloseRecord(by: .client, reason: "close packet"), at: 1).isEmpty)
        #expect(recorder.close(CloseRecord(by: .client, reason: "client went away"), at: 1.5).isEmpty)
        #expect(recorder.phase == .ending(CloseRecord(by: .client, reason: "close packet")))
        #expect(kinds(recorder.record(.engine(EngineRecord(dir: .serverToClient, transport: .polling, type: .noop)), at: 2)) == ["engine noop"],
                "the poll's answer belongs to the session")
        #expect(kinds(recorder.end(at: 2)) == ["close close packet"])
        #expect(recorder.isClosed)
        #expect(recorder.record(.engine(EngineRecord(dir: .serverToClient, transport: .polling, type: .noop)), at: 3).isEmpty)
        #expect(recorder.close(CloseRecord(by: .proxy, reason: "again"), at: 3, waitingForActivity: false).isEmpty)
    }

    @Test("A forced close does not wait")
    func forced() {
        var recorder = ConnectionRecorder(engineVersion: .v4, parser: .json)
        recorder.begin()
        #expect(recorder.close(CloseRecord(by: .client, reason: "close packet"), at: 1).isEmpty)
        #expect(kinds(recorder.close(CloseRecord(by: .proxy, reason: "proxy stopped"), at: 2, waitingForActivity: false)) == ["close close packet"])
    }
}
