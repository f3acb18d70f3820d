import FaultInjection
import LiveIntervention
import NIOCore
import SocketIOProtocol
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
    private struct Tables {
        var next = 0
        /// Set when the proxy stops: a connection that arrives after that is not recorded.
        var stopped = false
        var bySid: [String: ProxyConnection] = [:]
        /// Sids of closed conns, oldest first: they stay in `bySid` a while, so a request that
        /// comes after its session's close (a browser's last long-poll, a late POST) is taken as
        /// the closed conn's, and dropped with it, rather than opening a conn of its own.
        var closedSids: [String] = []
        /// Connections not closed yet, by id.
        var open: [String: ProxyConnection] = [:]
        var recoveries = RecoveryLinks()
    }

    /// How many closed sessions' sids are remembered.
    static let closedSidsKept = 4096

    private let tables = Mutex(Tables())
    let faults: FaultPlan?
    /// The parser every session uses, when the proxy was told; nil: each session's first packet tells.
    let parser: SocketIOParser?
    /// The most a binary packet's attachments may weigh together (as much as one message may).
    let maxAttachmentBytes: Int
    /// Where records go (the proxy's sink): returns the record's `seq`.
    private let sink: @Sendable (CaptureRecord.Body, String) -> Int

    init(
        faults: FaultPlan? = nil, parser: SocketIOParser? = nil, maxAttachmentBytes: Int = SocketIOCodec.defaultMaxAttachmentBytes,
        sink: @escaping @Sendable (CaptureRecord.Body, String) -> Int = { _, _ in 0 }
    ) {
        self.faults = faults
        self.parser = parser
        self.maxAttachmentBytes = maxAttachmentBytes
        self.sink = sink
    }

    /// A new conn (a WebSocket opened without polling first) going to `upstream`.
    func open(engineVersion: EngineIOVersion, upstream: ProxyUpstream, path: String) -> ProxyConnection {
        tables.withLock { tables in open(engineVersion: engineVersion, upstream: upstream, path: path, in: &tables) }
    }

    /// The conn a polling request belongs to (its sid's, or a new one going to `upstream`), with
    /// the request counted as activity. A conn that closed in between counts it too: closed, it
    /// records nothing.
    func beginRequest(sid: String?, engineVersion: EngineIOVersion, upstream: ProxyUpstream, path: String) -> ProxyConnection {
        let connection = tables.withLock { tables in
            sid.flatMap { tables.bySid[$0] } ?? open(engineVersion: engineVersion, upstream: upstream, path: path, in: &tables)
        }
        connection.state.withLock { $0.recorder.begin() }
        return connection
    }

    private func open(engineVersion: EngineIOVersion, upstream: ProxyUpstream, path: String, in tables: inout Tables) -> ProxyConnection {
        guard !tables.stopped else {
            // Already closed, so nothing is written for it: a conn the capture starts must end
            // in it, and the proxy's last records are its `close`s.
            return ProxyConnection(id: ConnectionID.unrecorded.description, engineVersion: engineVersion, upstream: upstream, path: path, closed: true)
        }
        tables.next += 1
        let connection = ProxyConnection(
            id: ConnectionID(number: tables.next).description, engineVersion: engineVersion, upstream: upstream, path: path, faults: faults, parser: parser,
            maxAttachmentBytes: maxAttachmentBytes
        )
        tables.open[connection.id] = connection
        return connection
    }

    func connection(sid: String) -> ProxyConnection? { tables.withLock { $0.bySid[sid] } }

    /// The conns open now, in the order they opened.
    func openConnections() -> [ProxyConnection] {
        tables.withLock { tables in tables.open.values.sorted { $0.id.count == $1.id.count ? $0.id < $1.id : $0.id.count < $1.id.count } }
    }

    func openConnection(id: String) -> ProxyConnection? { tables.withLock { $0.open[id] } }

    /// Whether a conn of this id was ever opened (and so, when not open, has closed).
    func wasOpened(id: String) -> Bool {
        guard let number = ConnectionID(id)?.number else { return false }
        return tables.withLock { number <= $0.next }
    }

    /// Decodes a frame of the conn under its own lock and writes its records; a sid its open
    /// packet tells is filed at once, so later requests carrying it find this conn. Returns what
    /// the frame gave and, with `seqs` (the fault stage names packets by them), the `seq` of each
    /// of its decoded records (0 for one that waits); without, none are gathered (the relay's path).
    func observe(
        _ frame: TrafficDecoder.Frame, dir: Direction, on connection: ProxyConnection, seqs: Bool = false, now: Double = CaptureClock.secondsSince1970()
    ) -> (observed: ConnectionRecorder.Observed, seqs: [Int]) {
        connection.state.withLock { state in
            let observed = state.recorder.observe(frame, dir: dir, at: now) { records in link(&records, dir: dir, on: connection) }
            state.lastSeen = now
            noteNamespaces(observed, in: &state)
            return (observed, written(observed, on: connection, state, seqs: seqs))
        }
    }

    /// A handshake's answer: its open packet, then the `session` record with the sid it told.
    func observeHandshake(
        _ frame: TrafficDecoder.Frame?, session: SessionRecord, on connection: ProxyConnection, now: Double = CaptureClock.secondsSince1970()
    ) -> ConnectionRecorder.Observed {
        connection.state.withLock { state in
            let observed = state.recorder.observeHandshake(frame, session: session, at: now) { records in link(&records, dir: .serverToClient, on: connection) }
            // Protocol v4 joins `/` in the handshake's answer (`40` after the open packet).
            noteNamespaces(observed, in: &state)
            _ = written(observed, on: connection, state, seqs: false)
            return observed
        }
    }

    /// The namespaces the client joined or left, for the live API.
    private func noteNamespaces(_ observed: ConnectionRecorder.Observed, in state: inout ProxyConnection.State) {
        for body in observed.decoded {
            if case .packet(let packet) = body, packet.type == .connect || packet.type == .disconnect { state.gate.note(packet) }
        }
    }

    /// Writes what `observed` gave and files a learned sid; the seqs of the frame's own records.
    /// Called with the conn's lock held.
    private func written(_ observed: ConnectionRecorder.Observed, on connection: ProxyConnection, _ state: ProxyConnection.State, seqs wanted: Bool) -> [Int] {
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
    private func link(_ records: inout [CaptureRecord.Body], dir: Direction, on connection: ProxyConnection) {
        guard records.contains(where: { if case .packet(let packet) = $0 { packet.type == .connect } else { false } }) else { return }
        tables.withLock { $0.recoveries.link(&records, dir: dir, conn: connection.id) }
    }

    /// Whether this token is new to the conn.
    func firstSighting(of token: String, source: TokenSource, nsp: String?, on connection: ProxyConnection) -> Bool {
        connection.state.withLock { $0.recorder.firstSighting(of: token, source: source, nsp: nsp) }
    }

    /// Records `body` unless the conn is closed, under the conn's lock, so no record of a conn can
    /// be written after its `close`. Returns its `seq` (0 while it waits), nil once the conn is closed.
    @discardableResult
    func emit(_ body: CaptureRecord.Body, on connection: ProxyConnection) -> Int? {
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
    func begin(_ connection: ProxyConnection) {
        connection.state.withLock { $0.recorder.begin() }
    }

    /// It has ended; writes the `close` that waited for it, if it was the last, and returns it.
    @discardableResult
    func end(_ connection: ProxyConnection) -> CloseRecord? {
        connection.state.withLock { state in
            finishing(state.recorder.end(at: CaptureClock.secondsSince1970()), on: connection, sid: state.recorder.observation.sid)
        }
    }

    /// Decides the conn's end, and writes its `close` now unless, with `waitingForActivity`,
    /// requests or inspections are still going on (``end(_:)`` writes it then). A forced close keeps
    /// the reason decided first. Returns the `close` written, if any.
    @discardableResult
    func close(_ connection: ProxyConnection, _ record: CloseRecord, waitingForActivity: Bool) -> CloseRecord? {
        connection.state.withLock { state in
            finishing(
                state.recorder.close(record, at: CaptureClock.secondsSince1970(), waitingForActivity: waitingForActivity), on: connection,
                sid: state.recorder.observation.sid
            )
        }
    }

    /// Writes a conn's last records and forgets it once it is closed. Called with the conn's lock held.
    private func finishing(_ records: [ConnectionRecorder.Stamped], on connection: ProxyConnection, sid: String?) -> CloseRecord? {
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
    func stop() -> [ProxyConnection] {
        tables.withLock { tables in
            tables.stopped = true
            return tables.open.values.sorted { $0.id.count == $1.id.count ? $0.id < $1.id : $0.id.count < $1.id.count }
        }
    }

    /// Polling conns gone quiet at `now`, with how long: no request in flight and none for their
    /// session's heartbeat window (pingInterval + pingTimeout, and `grace`: its server has ended
    /// it by then) or, when the window is not known, for `timeout` seconds.
    func idle(now: Double, timeout: Double, grace: Double) -> [(ProxyConnection, quiet: Double)] {
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
