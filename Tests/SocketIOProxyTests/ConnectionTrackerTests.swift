import SocketIOProtocol
import Testing
import TrafficCapture

@testable import SocketIOProxy

/// How the proxy follows Engine.IO sessions: one conn per sid, a close that waits for the
/// requests in flight, and a closed session's late requests kept out of new conns.
@Suite("Connection tracker")
struct ConnectionTrackerTests {
    /// A conn whose open packet has told its sid.
    func opened(_ tracker: ConnectionTracker, sid: String) -> ConnectionTracker.Connection {
        let connection = tracker.beginRequest(sid: nil, engineVersion: .v4)
        tracker.update(connection) { _ in ((), learnedSid: sid) }
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

    @Test("A close waits for the conn's requests in flight, then is written once")
    func closeWaitsForActivity() {
        let tracker = ConnectionTracker()
        let connection = opened(tracker, sid: "A")  // its handshake request still counts
        #expect(tracker.close(connection, CloseRecord(by: .client, reason: "close packet"), waitingForActivity: true) == nil)
        #expect(tracker.close(connection, CloseRecord(by: .server, reason: "later"), waitingForActivity: true) == nil)
        #expect(tracker.end(connection)?.reason == "close packet")
        #expect(tracker.end(connection) == nil)
        var emitted = false
        tracker.emitIfOpen(connection) { emitted = true }
        #expect(!emitted, "nothing is written after a conn's close")
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
