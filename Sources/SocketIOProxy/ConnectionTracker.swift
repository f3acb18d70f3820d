import FaultInjection
import NIOCore
import SocketIOTransport
import Synchronization
import TrafficCapture
import TrafficObservation

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
            /// Its observation, held records, requests in flight and end: what import's recorder decides too.
            var recorder: ConnectionRecorder
            /// A WebSocket carries this conn now: its own end closes the conn, not the sweep.
            var onWebSocket = false
            /// When traffic last went through (seconds since 1970), for the idle sweep.
            var lastSeen = CaptureClock.secondsSince1970()
            /// With `--fault`: the rules' decisions for this conn, and its polling side's state.
            var faults: ConnectionFaults?
            var polling = PollingFaults<EventLoopPromise<HTTPResponse>>()
            /// Cuts the WebSocket carrying the conn (a timed disconnect after the upgrade).
            var cutWebSocket: (@Sendable (ConnectionCut) -> Void)?
            /// The server the conn's polls go to, and its Engine.IO path: in forward mode every
            /// conn has its own, and a cut tells that one the session is over.
            var upstream: (server: ProxyUpstream, path: String)?
        }

        fileprivate init(id: String, engineVersion: EngineIOVersion, closed: Bool = false, faults: FaultPlan? = nil, parser: SocketIOParser? = nil) {
            self.id = id
            self.engineVersion = engineVersion
            var state = State(recorder: ConnectionRecorder(engineVersion: engineVersion, parser: parser))
            if closed { _ = state.recorder.close(CloseRecord(by: .proxy, reason: "proxy stopped"), at: 0, waitingForActivity: false) }
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

        var cutWebSocket: (@Sendable (ConnectionCut) -> Void)? {
            get { state.withLock { $0.cutWebSocket } }
            set { state.withLock { $0.cutWebSocket = newValue } }
        }

        var closed: Bool { state.withLock { $0.recorder.isClosed } }
        /// Where the conn's polls go, as its first request went.
        var upstream: (server: ProxyUpstream, path: String)? {
            get { state.withLock { $0.upstream } }
            set { state.withLock { state in state.upstream = state.upstream ?? newValue } }
        }
        /// The session's Socket.IO parser, once known (JSON until then).
        var parser: SocketIOParser { state.withLock { $0.recorder.observation.decoder.parser ?? .json } }
        var sid: String? { state.withLock { $0.recorder.observation.sid } }
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
        connection.state.withLock { $0.recorder.begin() }
        return connection
    }

    private static func open(engineVersion: EngineIOVersion, faults: FaultPlan?, parser: SocketIOParser?, in tables: inout Tables) -> Connection {
        guard !tables.stopped else {
            // Already closed, so nothing is written for it: a conn the capture starts must end
            // in it, and the proxy's last records are its `close`s.
            return Connection(id: ConnectionID.unrecorded.description, engineVersion: engineVersion, closed: true)
        }
        tables.next += 1
        let connection = Connection(id: ConnectionID(number: tables.next).description, engineVersion: engineVersion, faults: faults, parser: parser)
        tables.open[connection.id] = connection
        return connection
    }

    func connection(sid: String) -> Connection? { tables.withLock { $0.bySid[sid] } }

    /// Decodes a frame of the conn under its own lock and writes its records; a sid its open
    /// packet tells is filed at once, so later requests carrying it find this conn. Returns what
    /// the frame gave and, with `seqs` (the fault stage names packets by them), the `seq` of each
    /// of its decoded records (0 for one that waits); without, none are gathered (the relay's path).
    func observe(
        _ frame: TrafficDecoder.Frame, dir: Direction, on connection: Connection, seqs: Bool = false, now: Double = CaptureClock.secondsSince1970()
    ) -> (observed: ConnectionRecorder.Observed, seqs: [Int]) {
        connection.state.withLock { state in
            let observed = state.recorder.observe(frame, dir: dir, at: now) { records in link(&records, dir: dir, on: connection) }
            state.lastSeen = now
            return (observed, written(observed, on: connection, state, seqs: seqs))
        }
    }

    /// A handshake's answer: its open packet, then the `session` record with the sid it told.
    func observeHandshake(
        _ frame: TrafficDecoder.Frame?, session: SessionRecord, on connection: Connection, now: Double = CaptureClock.secondsSince1970()
    ) -> ConnectionRecorder.Observed {
        connection.state.withLock { state in
            let observed = state.recorder.observeHandshake(frame, session: session, at: now) { records in link(&records, dir: .serverToClient, on: connection) }
            _ = written(observed, on: connection, state, seqs: false)
            return observed
        }
    }

    /// Writes what `observed` gave and files a learned sid; the seqs of the frame's own records.
    /// Called with the conn's lock held.
    private func written(_ observed: ConnectionRecorder.Observed, on connection: Connection, _ state: Connection.State, seqs wanted: Bool) -> [Int] {
        if let sid = observed.learnedSid { tables.withLock { $0.bySid[sid] = connection } }
        guard wanted else {
            for stamped in observed.records { _ = sink(stamped.body, connection.id) }
            return []
        }
        let seqs = observed.records.map { sink($0.body, connection.id) }
        // The frame's own records are the last ones written, unless they wait with the others.
        guard !state.recorder.isHolding, seqs.count >= observed.decoded.count else { return Array(repeating: 0, count: observed.decoded.count) }
        return Array(seqs.suffix(observed.decoded.count))
    }

    /// Connection-state recovery across conns (the table is the tracker's). Called with the conn's lock held.
    private func link(_ records: inout [CaptureRecord.Body], dir: Direction, on connection: Connection) {
        guard records.contains(where: { if case .packet(let packet) = $0 { packet.type == .connect } else { false } }) else { return }
        tables.withLock { $0.recoveries.link(&records, dir: dir, conn: connection.id) }
    }

    /// Whether this token is new to the conn.
    func firstSighting(of token: String, source: TokenSource, nsp: String?, on connection: Connection) -> Bool {
        connection.state.withLock { $0.recorder.firstSighting(of: token, source: source, nsp: nsp) }
    }

    /// Records `body` unless the conn is closed, under the conn's lock, so no record of a conn can
    /// be written after its `close`. Returns its `seq` (0 while it waits), nil once the conn is closed.
    @discardableResult
    func emit(_ body: CaptureRecord.Body, on connection: Connection) -> Int? {
        connection.state.withLock { state in
            guard !state.recorder.isClosed else { return nil }
            let written = state.recorder.record(body, at: CaptureClock.secondsSince1970()).map { sink($0.body, connection.id) }
            return written.last ?? 0
        }
    }

    /// Writes the records of conns that have waited `after` seconds for a first Socket.IO packet
    /// (a session that only polls, a client that never connects a namespace) or for their sid:
    /// they are JSON sessions as far as anyone can tell, and a capture must not sit on them.
    func releaseHeld(now: Double, after: Double) {
        let open = tables.withLock { Array($0.open.values) }
        for connection in open {
            connection.state.withLock { state in
                for stamped in state.recorder.releaseHeld(now: now, after: after) { _ = sink(stamped.body, connection.id) }
            }
        }
    }

    /// Something the conn's `close` must wait for has begun.
    func begin(_ connection: Connection) {
        connection.state.withLock { $0.recorder.begin() }
    }

    /// It has ended; writes the `close` that waited for it, if it was the last, and returns it.
    @discardableResult
    func end(_ connection: Connection) -> CloseRecord? {
        connection.state.withLock { state in
            finishing(state.recorder.end(at: CaptureClock.secondsSince1970()), on: connection, sid: state.recorder.observation.sid)
        }
    }

    /// Decides the conn's end, and writes its `close` now unless, with `waitingForActivity`,
    /// requests or inspections are still going on (``end(_:)`` writes it then). A forced close keeps
    /// the reason decided first. Returns the `close` written, if any.
    @discardableResult
    func close(_ connection: Connection, _ record: CloseRecord, waitingForActivity: Bool) -> CloseRecord? {
        connection.state.withLock { state in
            finishing(
                state.recorder.close(record, at: CaptureClock.secondsSince1970(), waitingForActivity: waitingForActivity), on: connection,
                sid: state.recorder.observation.sid
            )
        }
    }

    /// Writes a conn's last records and forgets it once it is closed. Called with the conn's lock held.
    private func finishing(_ records: [ConnectionRecorder.Stamped], on connection: Connection, sid: String?) -> CloseRecord? {
        var closed: CloseRecord?
        for stamped in records {
            _ = sink(stamped.body, connection.id)
            if case .close(let record) = stamped.body { closed = record }
        }
        guard closed != nil else { return nil }
        tables.withLock { tables in
            tables.open[connection.id] = nil
            guard let sid else { return }
            tables.closedSids.append(sid)
            if tables.closedSids.count > 2 * Self.closedSidsKept {
                for forgotten in tables.closedSids.prefix(Self.closedSidsKept) { tables.bySid[forgotten] = nil }
                tables.closedSids.removeFirst(Self.closedSidsKept)
            }
        }
        return closed
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
                guard !state.recorder.isClosed, !state.onWebSocket, state.recorder.inFlight == 0 else { return nil }
                let limit = state.recorder.observation.heartbeatWindow.map { min($0 + grace, timeout) } ?? timeout
                return now - state.lastSeen > limit ? (connection, limit) : nil
            }
        }
    }
}
