import FaultInjection
import NIOCore
import SocketIOTransport
import Synchronization
import TrafficCapture

/// Follows Engine.IO sessions through the proxy: one `conn` per session, kept across the
/// polling-to-websocket upgrade (matched by sid).
///
/// Each conn has a lock of its own for its observation and its records, so conns never wait for
/// each other; the tracker's lock covers only the tables (sid to conn, open conns). Where both are
/// held, the conn's is taken first.
final class ConnectionTracker: Sendable {
    final class Connection: Sendable {
        let id: String
        let engineVersion: EngineIOVersion
        fileprivate let state: Mutex<State>

        fileprivate struct State {
            var observation: ConnectionObservation
            var closed = false
            /// Requests in flight and token inspections not yet written: a conn's `close` waits
            /// for them, so a long-poll answered just after the close packet still lands in this
            /// conn, before its `close`.
            var activity = 0
            /// The `close` decided while `activity` was still going on.
            var pendingClose: CloseRecord?
            /// A WebSocket carries this conn now: its own end closes the conn, not the sweep.
            var onWebSocket = false
            /// When traffic last went through (seconds since 1970), for the idle sweep.
            var lastSeen = CaptureClock.secondsSince1970()
            /// With `--fault`: the rules' decisions for this conn, and its polling side's state.
            var faults: ConnectionFaults?
            var polling = PollingFaults<EventLoopPromise<HTTPResponse>>()
            /// Cuts the WebSocket carrying the conn (a timed disconnect after the upgrade).
            var cutWebSocket: (@Sendable (FaultRule.Cut) -> Void)?
            /// The server the conn's polls go to, and its Engine.IO path: in forward mode every
            /// conn has its own, and a cut tells that one the session is over.
            var upstream: (server: ProxyUpstream, path: String)?
            /// The conn's records while its parser is not known yet: its `session` record says it,
            /// so they wait for the first Socket.IO packet (or the conn's end, or a second: see
            /// ``ConnectionTracker/releaseHeld(now:after:)``).
            var held: [CaptureRecord.Body]?
            var heldSince = CaptureClock.secondsSince1970()
            /// Held only until the open packet tells the sid (a WebSocket-only session's `session`
            /// record names it), the parser being known.
            var heldForSid = false
        }

        fileprivate init(id: String, engineVersion: EngineIOVersion, closed: Bool = false, faults: FaultPlan? = nil, parser: SocketIOParser? = nil) {
            self.id = id
            self.engineVersion = engineVersion
            var state = State(observation: ConnectionObservation(engineVersion: engineVersion, parser: parser))
            if parser == nil { state.held = [] }
            state.closed = closed
            state.faults = faults.map { ConnectionFaults(plan: $0, conn: id, engineVersion: engineVersion, start: CaptureClock.secondsSince1970()) }
            self.state = Mutex(state)
        }

        /// Runs `body` on the conn's fault state, under its lock (nil without `--fault`).
        func withFaults<Result: Sendable>(_ body: @Sendable (inout ConnectionFaults, inout PollingFaults<EventLoopPromise<HTTPResponse>>) -> Result) -> Result? {
            state.withLock { state in
                guard state.faults != nil else { return nil }
                return body(&state.faults!, &state.polling)
            }
        }

        var cutWebSocket: (@Sendable (FaultRule.Cut) -> Void)? {
            get { state.withLock { $0.cutWebSocket } }
            set { state.withLock { $0.cutWebSocket = newValue } }
        }

        var closed: Bool { state.withLock { $0.closed } }
        /// Where the conn's polls go, as its first request went.
        var upstream: (server: ProxyUpstream, path: String)? {
            get { state.withLock { $0.upstream } }
            set { state.withLock { state in state.upstream = state.upstream ?? newValue } }
        }
        /// The session's Socket.IO parser, once known (JSON until then).
        var parser: SocketIOParser { state.withLock { $0.observation.decoder.parser ?? .json } }
        var sid: String? { state.withLock { $0.observation.sid } }
        var onWebSocket: Bool {
            get { state.withLock { $0.onWebSocket } }
            set { state.withLock { $0.onWebSocket = newValue } }
        }
    }

    private struct Tables {
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
        var recoveries = RecoveryLinks()
    }

    /// How many closed sessions' sids are remembered.
    static let closedSidsKept = 4096

    private let tables = Mutex(Tables())
    let faults: FaultPlan?
    /// The parser every session uses, when the proxy was told; nil: each session's first packet tells.
    let parser: SocketIOParser?
    /// Where records go (the proxy's sink): returns the record's `seq`.
    private let sink: @Sendable (CaptureRecord.Body, String) -> Int

    init(faults: FaultPlan? = nil, parser: SocketIOParser? = nil, sink: @escaping @Sendable (CaptureRecord.Body, String) -> Int = { _, _ in 0 }) {
        self.faults = faults
        self.parser = parser
        self.sink = sink
    }

    func open(engineVersion: EngineIOVersion) -> Connection {
        tables.withLock { tables in Self.open(engineVersion: engineVersion, faults: faults, parser: parser, in: &tables) }
    }

    /// The conn a polling request belongs to (its sid's, or a new one), with the request counted
    /// as activity. A conn that closed in between counts it too: closed, it records nothing.
    func beginRequest(sid: String?, engineVersion: EngineIOVersion) -> Connection {
        let connection = tables.withLock { tables in
            sid.flatMap { tables.bySid[$0] } ?? Self.open(engineVersion: engineVersion, faults: faults, parser: parser, in: &tables)
        }
        connection.state.withLock { $0.activity += 1 }
        return connection
    }

    private static func open(engineVersion: EngineIOVersion, faults: FaultPlan?, parser: SocketIOParser?, in tables: inout Tables) -> Connection {
        guard !tables.stopped else {
            // Already closed, so nothing is written for it: a conn the capture starts must end
            // in it, and the proxy's last records are its `close`s.
            return Connection(id: "c0", engineVersion: engineVersion, closed: true)
        }
        tables.next += 1
        let connection = Connection(id: "c\(tables.next)", engineVersion: engineVersion, faults: faults, parser: parser)
        tables.open[connection.id] = connection
        return connection
    }

    func connection(sid: String) -> Connection? { tables.withLock { $0.bySid[sid] } }

    /// Decodes a frame of the conn under its own lock; a sid its open packet tells is filed at
    /// once, so later requests carrying it find this conn.
    func observe(
        _ frame: TrafficDecoder.Frame, dir: Direction, on connection: Connection, now: Double = CaptureClock.secondsSince1970()
    ) -> TrafficDecoder.Output {
        connection.state.withLock { state in
            var (output, learnedSid) = state.observation.observe(frame, dir: dir, now: now)
            state.lastSeen = now
            if let learnedSid { tables.withLock { $0.bySid[learnedSid] = connection } }
            linkRecoveries(&output, dir: dir, on: connection)
            if let parser = output.parserFound {
                release(connection, &state, parser: parser)
            } else if learnedSid != nil, state.heldForSid {
                release(connection, &state, parser: nil)
            }
            return output
        }
    }

    private func linkRecoveries(_ output: inout TrafficDecoder.Output, dir: Direction, on connection: Connection) {
        guard output.records.contains(where: { if case .packet(let packet) = $0 { packet.type == .connect } else { false } }) else { return }
        tables.withLock { $0.recoveries.link(&output.records, dir: dir, conn: connection.id) }
    }

    /// Whether this token is new to the conn.
    func firstSighting(of token: String, source: String, nsp: String?, on connection: Connection) -> Bool {
        connection.state.withLock { $0.observation.firstSighting(of: token, source: source, nsp: nsp) }
    }

    /// Records `body` unless the conn is closed, under the conn's lock, so no record of a conn can
    /// be written after its `close`; while the conn's parser is not known, it waits with the
    /// others. Returns its `seq` (0 while it waits).
    @discardableResult
    func emit(_ body: CaptureRecord.Body, on connection: Connection) -> Int? {
        connection.state.withLock { state in
            guard !state.closed else { return nil }
            if state.held == nil, case .session(let session) = body, session.sid == nil, state.observation.sid == nil {
                // A WebSocket-only session: its sid comes with the open packet, right after.
                state.held = []
                state.heldForSid = true
                state.heldSince = CaptureClock.secondsSince1970()
            }
            if state.held != nil {
                state.held!.append(body)
                return 0
            }
            return sink(body, connection.id)
        }
    }

    /// Writes the records of conns that have waited `after` seconds for a first Socket.IO packet
    /// (a session that only polls, a client that never connects a namespace): they are JSON
    /// sessions as far as anyone can tell, and a capture must not sit on them.
    func releaseHeld(now: Double, after: Double) {
        let open = tables.withLock { Array($0.open.values) }
        for connection in open {
            connection.state.withLock { state in
                if state.held != nil, now - state.heldSince >= after { release(connection, &state, parser: nil) }
            }
        }
    }

    /// Writes what waited for the parser, the `session` record saying it. Called with the conn's
    /// lock held.
    private func release(_ connection: Connection, _ state: inout Connection.State, parser: SocketIOParser?) {
        guard let held = state.held else { return }
        state.held = nil
        state.heldForSid = false
        for var body in held {
            if case .session(var session) = body {
                if parser == .msgpack { session.parser = .msgpack }
                // A WebSocket-only session's sid, from its open packet.
                if session.sid == nil { session.sid = state.observation.sid }
                body = .session(session)
            }
            _ = sink(body, connection.id)
        }
    }

    /// Something the conn's `close` must wait for has begun.
    func begin(_ connection: Connection) {
        connection.state.withLock { $0.activity += 1 }
    }

    /// It has ended; returns the `close` to write if it was the last thing the close waited for.
    func end(_ connection: Connection) -> CloseRecord? {
        connection.state.withLock { state in
            state.activity -= 1
            guard state.activity == 0, !state.closed, let record = state.pendingClose else { return nil }
            finish(connection, &state)
            return record
        }
    }

    /// Decides the conn's end. Returns the `close` to write now, or nil when it is already closed
    /// or, with `waitingForActivity`, when requests or inspections are still going on (`end`
    /// returns it then). A forced close keeps the reason decided first.
    func close(_ connection: Connection, _ record: CloseRecord, waitingForActivity: Bool) -> CloseRecord? {
        connection.state.withLock { state in
            guard !state.closed else { return nil }
            if waitingForActivity {
                guard state.pendingClose == nil else { return nil }
                if state.activity > 0 {
                    state.pendingClose = record
                    return nil
                }
            }
            finish(connection, &state)
            return state.pendingClose ?? record
        }
    }

    /// Called with the conn's lock held.
    private func finish(_ connection: Connection, _ state: inout Connection.State) {
        release(connection, &state, parser: nil)
        state.closed = true
        let sid = state.observation.sid
        tables.withLock { tables in
            tables.open[connection.id] = nil
            guard let sid else { return }
            tables.closedSids.append(sid)
            if tables.closedSids.count > 2 * Self.closedSidsKept {
                for forgotten in tables.closedSids.prefix(Self.closedSidsKept) { tables.bySid[forgotten] = nil }
                tables.closedSids.removeFirst(Self.closedSidsKept)
            }
        }
    }

    /// Stops recording new connections and returns those still open, in the order they opened.
    func stop() -> [Connection] {
        tables.withLock { tables in
            tables.stopped = true
            return tables.open.values.sorted { $0.id.count == $1.id.count ? $0.id < $1.id : $0.id.count < $1.id.count }
        }
    }

    /// Polling conns gone quiet at `now`, with how long: no request in flight and none for their
    /// session's heartbeat window (pingInterval + pingTimeout, and `grace`: its server has ended
    /// it by then) or, when the window is not known, for `timeout` seconds.
    func idle(now: Double, timeout: Double, grace: Double) -> [(Connection, quiet: Double)] {
        let open = tables.withLock { Array($0.open.values) }
        return open.compactMap { connection in
            connection.state.withLock { state in
                guard !state.closed, !state.onWebSocket, state.activity == 0 else { return nil }
                let limit = state.observation.heartbeatWindow.map { min($0 + grace, timeout) } ?? timeout
                return now - state.lastSeen > limit ? (connection, limit) : nil
            }
        }
    }
}
