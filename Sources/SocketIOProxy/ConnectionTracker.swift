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
        var bySid: [String: Connection] = [:]
        /// Connections not closed yet, by id.
        var open: [String: Connection] = [:]
    }

    private let state = Mutex(State())

    func open(engineVersion: EngineIOVersion) -> Connection {
        state.withLock { state in
            state.next += 1
            let connection = Connection(id: "c\(state.next)", engineVersion: engineVersion)
            state.open[connection.id] = connection
            return connection
        }
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

    func forget(_ connection: Connection) {
        state.withLock { state in
            connection.closed = true
            if let sid = connection.sid { state.bySid[sid] = nil }
            state.open[connection.id] = nil
        }
    }

    func stillOpen() -> [Connection] {
        state.withLock { state in state.open.values.sorted { $0.id.count == $1.id.count ? $0.id < $1.id : $0.id.count < $1.id.count } }
    }

    /// Connections with no traffic since `cutoff` (seconds since 1970).
    func idle(since cutoff: Double) -> [Connection] {
        state.withLock { state in state.open.values.filter { $0.lastSeen < cutoff && !$0.closed && !$0.onWebSocket } }
    }
}
