import SocketIOProtocol
import Testing
import TrafficCapture
import TrafficObservation

@testable import SocketIOProxy

/// How the proxy follows Engine.IO sessions: one conn per sid, a close that waits for the
/// requests in flight, and a closed session's late requests kept out of new conns.
@Suite("Connection tracker")
struct ConnectionTrackerTests {
    /// A conn whose open packet (a polling handshake's answer) has told its sid.
    func opened(_ tracker: ConnectionTracker, sid: String) -> ProxyConnection {
        let connection = tracker.beginRequest(sid: nil, engineVersion: .v4)
        let open = #"0{"sid":"\#(sid)","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000}"#
        _ = tracker.observe(.pollingBody(Array(open.utf8)), dir: .serverToClient, on: connection)
        #expect(connection.sid == sid)
        return connection
    }

    @Test("Requests carrying a sid find its conn; a new handshake opens the next conn")
    func bySid() {
        let tracker = ConnectionTracker()
        let first = opened(tracker, sid: "A")
        #expect(first.id == "c1")
        #expect(tracker.beginRequest(sid: "A", engineVersion: .v4) === first)
        #expect(tracker.beginRequest(sid: nil, engineVersion: .v4).id == "c2")
    }

    @Test("A conn goes where its first request went: a later request of its session names another upstream in vain")
    func upstreamFixedAtOpen() {
        let tracker = ConnectionTracker()
        let first = opened(tracker, sid: "A")
        let elsewhere = ProxyUpstream(host: "127.0.0.2", port: 8080, tls: nil)
        let again = tracker.beginRequest(sid: "A", engineVersion: .v4, upstream: elsewhere, path: "/other/")
        #expect(again === first && again.upstream === ConnectionTracker.testUpstream && again.path == "/socket.io/")
        let fresh = tracker.beginRequest(sid: nil, engineVersion: .v4, upstream: elsewhere, path: "/other/")
        #expect(fresh.upstream === elsewhere && fresh.path == "/other/")
    }

    @Test("A close waits for the conn's requests in flight, then is written once")
    func closeWaitsForActivity() {
        let tracker = ConnectionTracker()
        let connection = opened(tracker, sid: "A")  // its handshake request still counts
        #expect(tracker.close(connection, CloseRecord(by: .client, reason: "close packet"), waitingForActivity: true) == nil)
        #expect(tracker.close(connection, CloseRecord(by: .server, reason: "later"), waitingForActivity: true) == nil)
        #expect(tracker.end(connection)?.reason == "close packet")
        #expect(tracker.end(connection) == nil)
        #expect(tracker.emit(.close(CloseRecord(by: .client, reason: "late")), on: connection) == nil, "nothing is written after a conn's close")
    }

    @Test("A request after its session's close is the closed conn's, not a new one (a browser's last long-poll)")
    func lateRequestAfterClose() {
        let tracker = ConnectionTracker()
        let connection = opened(tracker, sid: "A")
        _ = tracker.end(connection)
        #expect(tracker.close(connection, CloseRecord(by: .client, reason: "close packet"), waitingForActivity: true) != nil)
        let late = tracker.beginRequest(sid: "A", engineVersion: .v4)
        #expect(late === connection && late.closed)
        #expect(tracker.connection(sid: "A") === connection)
        #expect(tracker.beginRequest(sid: nil, engineVersion: .v4).id == "c2")
    }

    @Test("Closed sessions' sids are remembered up to a bound, then forgotten oldest first")
    func closedSidsAreBounded() {
        let tracker = ConnectionTracker()
        let kept = ConnectionTracker.closedSidsKept
        for index in 0..<(2 * kept + 1) {
            let connection = opened(tracker, sid: "S\(index)")
            _ = tracker.end(connection)
            _ = tracker.close(connection, CloseRecord(by: .client, reason: "close packet"), waitingForActivity: false)
        }
        #expect(tracker.connection(sid: "S0") == nil, "the oldest are forgotten")
        #expect(tracker.connection(sid: "S\(2 * kept)")?.closed == true, "the newest are kept")
        #expect(tracker.connection(sid: "S\(kept)")?.closed == true)
    }

    @Test("Stopping returns the open conns in the order they opened, and later arrivals are not recorded")
    func stop() {
        let tracker = ConnectionTracker()
        let conns = (1...11).map { opened(tracker, sid: "S\($0)") }
        _ = tracker.close(conns[0], CloseRecord(by: .client, reason: "done"), waitingForActivity: false)
        #expect(tracker.stop().map(\.id) == (2...11).map { "c\($0)" })
        #expect(tracker.open(engineVersion: .v4).closed)
    }
}

@Suite("A conn's observation")
struct ConnectionObservationTests {
    func packet(_ observed: (output: TrafficDecoder.Output, learnedSid: String?)) -> PacketRecord? {
        for case .packet(let record) in observed.output.records { return record }
        return nil
    }

    @Test("An ack gets the time since its event: same id, same namespace, the other direction")
    func ackLatency() {
        var observation = ConnectionObservation(engineVersion: .v4)
        _ = observation.observe(.webSocket(.text(#"42/chat,3["save",1]"#)), dir: .clientToServer, now: 10)
        _ = observation.observe(.webSocket(.text(#"42/other,3["save",1]"#)), dir: .serverToClient, now: 10.1)
        // An ack of the same id on another namespace, or in the same direction, is not its answer.
        let stray = packet(observation.observe(.webSocket(.text(#"43/other,3["no"]"#)), dir: .serverToClient, now: 10.2))
        #expect(stray != nil && stray?.latencyMilliseconds == nil)
        let ack = packet(observation.observe(.webSocket(.text(#"43/chat,3["ok"]"#)), dir: .serverToClient, now: 10.25))
        #expect(ack?.latencyMilliseconds == 250)
        // Answered once: the same ack again has no event left.
        let again = packet(observation.observe(.webSocket(.text(#"43/chat,3["ok"]"#)), dir: .serverToClient, now: 11))
        #expect(again != nil && again?.latencyMilliseconds == nil)
        // The server's event on /other waits for the client's ack.
        let clientAck = packet(observation.observe(.webSocket(.text(#"43/other,3[]"#)), dir: .clientToServer, now: 10.6))
        #expect(clientAck?.latencyMilliseconds == 500)
        #expect(observation.pendingAcks.isEmpty)
    }

    @Test("Events whose ack never comes are forgotten past the limit, the recent ones kept")
    func pendingAcksAreBounded() {
        var observation = ConnectionObservation(engineVersion: .v4)
        for id in 0...ConnectionObservation.pendingAckLimit {
            _ = observation.observe(.webSocket(.text("42\(id)[\"e\"]")), dir: .clientToServer, now: 0)
        }
        _ = observation.observe(.webSocket(.text(#"42999999["late"]"#)), dir: .clientToServer, now: 1_000)
        _ = observation.observe(.webSocket(.text(#"2["tick"]"#)), dir: .clientToServer, now: 1_000)
        #expect(observation.pendingAcks.count == 1)
    }

    @Test("The sid is learned once, from the server's open packet")
    func sid() {
        var observation = ConnectionObservation(engineVersion: .v4)
        let open = #"0{"sid":"S1","upgrades":[],"pingInterval":25000,"pingTimeout":20000}"#
        let first = observation.observe(.webSocket(.text(open)), dir: .serverToClient, now: 0)
        let again = observation.observe(.webSocket(.text(open)), dir: .serverToClient, now: 0)
        #expect(first.learnedSid == "S1" && again.learnedSid == nil)
        #expect(observation.sid == "S1")
    }

    @Test("A token is reported once per source and namespace")
    func tokens() {
        var observation = ConnectionObservation(engineVersion: .v4)
        let sightings = [
            observation.firstSighting(of: "t", source: "auth.token", nsp: "/"),
            observation.firstSighting(of: "t", source: "auth.token", nsp: "/"),
            observation.firstSighting(of: "t", source: "auth.token", nsp: "/admin"),
            observation.firstSighting(of: "t", source: "query.token", nsp: nil),
        ]
        #expect(sightings == [true, false, true, true])
    }
}

extension ConnectionTracker {
    /// Where the tests' conns go (nothing is sent there).
    static let testUpstream = ProxyUpstream(host: "127.0.0.1", port: 9, tls: nil)

    func beginRequest(sid: String?, engineVersion: EngineIOVersion) -> ProxyConnection {
        beginRequest(sid: sid, engineVersion: engineVersion, upstream: Self.testUpstream, path: "/socket.io/")
    }

    func open(engineVersion: EngineIOVersion) -> ProxyConnection {
        open(engineVersion: engineVersion, upstream: Self.testUpstream, path: "/socket.io/")
    }
}
