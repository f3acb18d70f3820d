import Synchronization
import TrafficCapture

/// Follows Engine.IO sessions through the proxy: one `conn` per session, kept across the
/// polling-to-websocket upgrade (matched by sid), with its decoder, the tokens already reported,
/// and the events waiting for their acks.
final class ConnectionTracker: Sendable {
    final class Connection: @unchecked Sendable {
        // Safe: every mutable field is touched only under the tracker's lock.
        let id: String
        let engineVersion: EngineIOVersion
        var decoder: TrafficDecoder
        var sid: String?
        var reportedTokens: Set<String> = []
        var pendingAcks: [String: Double] = [:]
        var closed = false
        /// Requests in flight and token inspections not yet written: a conn's `close` waits for
        /// them, so a long-poll answered just after the close packet still lands in this conn,
        /// before its `close`.
        var activity = 0
        /// The `close` decided while `activity` was still going on.
        var pendingClose: CloseRecord?
        /// A WebSocket carries this conn now: its own end closes the conn, not the sweep.
        var onWebSocket = false
        /// When traffic last went through (seconds since 1970), for the idle sweep.
        var lastSeen = CaptureClock.secondsSince1970()

        init(id: String, engineVersion: EngineIOVersion) {
            self.id = id
            self.engineVersion = engineVersion
            decoder = TrafficDecoder(engineVersion: engineVersion)
        }
    }

    private struct State {
        var next = 0
        /// Set when the proxy stops: a connection that arrives after that is not recorded.
        var stopped = false
        var bySid: [String: Connection] = [:]
        /// Sids of closed conns, oldest first: they stay in `bySid` a while, so a request that
        /// comes after its session's close (a browser's last long-poll, a late POST) is taken as
        /// the closed conn's, and dropped with it, rather than opening a conn of its own.
        var closedSids: [String] = []
        /// Connections not closed yet, by id.
        var open: [String: Connection] = [:]
    }

    /// How many closed sessions' sids are remembered.
    static let closedSidsKept = 4096

    private let state = Mutex(State())

    func open(engineVersion: EngineIOVersion) -> Connection {
        state.withLock { state in Self.open(engineVersion: engineVersion, in: &state) }
    }

    /// The conn a polling request belongs to (its sid's, or a new one), with the request counted
    /// as activity in the same step, so the conn cannot close between the two.
    func beginRequest(sid: String?, engineVersion: EngineIOVersion) -> Connection {
        state.withLock { state in
            let connection = sid.flatMap { state.bySid[$0] } ?? Self.open(engineVersion: engineVersion, in: &state)
            connection.activity += 1
            return connection
        }
    }

    private static func open(engineVersion: EngineIOVersion, in state: inout State) -> Connection {
        guard !state.stopped else {
            // Already closed, so nothing is written for it: a conn the capture starts must end
            // in it, and the proxy's last records are its `close`s.
            let late = Connection(id: "c0", engineVersion: engineVersion)
            late.closed = true
            return late
        }
        state.next += 1
        let connection = Connection(id: "c\(state.next)", engineVersion: engineVersion)
        state.open[connection.id] = connection
        return connection
    }

    func connection(sid: String) -> Connection? { state.withLock { $0.bySid[sid] } }

    /// Runs `body` under the lock; a sid it returns (learned from an open packet) is filed at once,
    /// so later requests carrying it find this conn.
    func update<Result>(_ connection: Connection, _ body: (Connection) -> (Result, learnedSid: String?)) -> Result {
        state.withLock { state in
            let (result, sid) = body(connection)
            if let sid, connection.sid != sid {
                connection.sid = sid
                state.bySid[sid] = connection
            }
            return result
        }
    }

    /// Runs `body` with exclusive access to the connection's state.
    func with<Result>(_ connection: Connection, _ body: (Connection) -> Result) -> Result {
        state.withLock { _ in body(connection) }
    }

    /// Records `body` unless the conn is closed, under the lock, so no record of a conn can be
    /// written after its `close`.
    func emitIfOpen(_ connection: Connection, _ emit: () -> Void) {
        state.withLock { _ in if !connection.closed { emit() } }
    }

    /// Something the conn's `close` must wait for has begun.
    func begin(_ connection: Connection) {
        state.withLock { _ in connection.activity += 1 }
    }

    /// It has ended; returns the `close` to write if it was the last thing the close waited for.
    func end(_ connection: Connection) -> CloseRecord? {
        state.withLock { state in
            connection.activity -= 1
            guard connection.activity == 0, !connection.closed, let record = connection.pendingClose else { return nil }
            Self.finish(connection, in: &state)
            return record
        }
    }

    /// Decides the conn's end. Returns the `close` to write now, or nil when it is already closed
    /// or, with `waitingForActivity`, when requests or inspections are still going on (`end`
    /// returns it then). A forced close keeps the reason decided first.
    func close(_ connection: Connection, _ record: CloseRecord, waitingForActivity: Bool) -> CloseRecord? {
        state.withLock { state in
            guard !connection.closed else { return nil }
            if waitingForActivity {
                guard connection.pendingClose == nil else { return nil }
                if connection.activity > 0 {
                    connection.pendingClose = record
                    return nil
                }
            }
            Self.finish(connection, in: &state)
            return connection.pendingClose ?? record
        }
    }

    private static func finish(_ connection: Connection, in state: inout State) {
        connection.closed = true
        state.open[connection.id] = nil
        guard let sid = connection.sid else { return }
        state.closedSids.append(sid)
        if state.closedSids.count > 2 * closedSidsKept {
            for forgotten in state.closedSids.prefix(closedSidsKept) where state.bySid[forgotten]?.closed == true {
                state.bySid[forgotten] = nil
            }
            state.closedSids.removeFirst(closedSidsKept)
        }
    }

    /// Stops recording new connections and returns those still open, in the order they opened.
    func stop() -> [Connection] {
        state.withLock { state in
            state.stopped = true
            return state.open.values.sorted { $0.id.count == $1.id.count ? $0.id < $1.id : $0.id.count < $1.id.count }
        }
    }

    /// Connections with no traffic since `cutoff` (seconds since 1970).
    func idle(since cutoff: Double) -> [Connection] {
        state.withLock { state in state.open.values.filter { $0.lastSeen < cutoff && !$0.closed && !$0.onWebSocket } }
    }
}
