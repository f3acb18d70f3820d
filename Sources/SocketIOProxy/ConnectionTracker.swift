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
/// What the relays see comes in as events (``Event``). Without a fault stage they wait in an
/// ``ObservationQueue`` and are decoded and recorded on its thread, in the order they happened;
/// the loops only file what they need at once (a conn's sid, as its handshake is answered). With
/// one (`--fault`, live intervention), each packet's records must be written before it is decided
/// on, so every event is handled at once, on the loop that saw it.
///
/// Each conn has a lock of its own for its observation and its records, so conns never wait for
/// each other; the tracker's lock covers only the tables (sid to conn, open conns). Where both are
/// held, the conn's is taken first.
final class ConnectionTracker: Sendable {
    /// Tokens a handshake request carried, with where.
    typealias HandshakeTokens = [(token: String, source: TokenSource)]

    /// What a relay saw or decided, for a conn's records. The cases that hold a record are boxed:
    /// the queue copies events, and a frame's is a tenth of a record's size.
    enum Event: Sendable {
        case frame(TrafficDecoder.Frame, Direction, ProxyConnection)
        /// A handshake's answer (nil: refused, no payload), its session, and the tokens the request carried.
        indirect case handshake(TrafficDecoder.Frame?, SessionRecord, tokens: HandshakeTokens, ProxyConnection)
        /// Tokens a request carried (a WebSocket's handshake).
        case tokens(HandshakeTokens, ProxyConnection)
        /// A record of the proxy's; one of no conn without.
        indirect case record(CaptureRecord.Body, ProxyConnection?)
        case begin(ProxyConnection)
        case end(ProxyConnection)
        case close(ProxyConnection, CloseRecord, waitingForActivity: Bool)
        /// The sweep: held records let go, conns whose session ended unseen closed.
        case sweep(releaseAfter: Double, idleTimeout: Double, grace: Double)
    }

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
    /// Where events wait for the observing thread; nil: each is handled at once.
    let ordered: ObservationQueue?
    /// Where records go (the proxy's sink): returns the record's `seq` (0 when not known yet).
    private let sink: SocketIOProxy.Sink
    /// Where a token new to its conn goes to be inspected (counted as the conn's activity).
    private let inspect: @Sendable (TokenInspection) -> Void

    /// - Parameter ordered: events wait for the observing thread (see ``ObservationQueue``); only
    ///   without `faults`, whose stage needs each packet's records at once.
    init(
        faults: FaultPlan? = nil, parser: SocketIOParser? = nil, maxAttachmentBytes: Int = SocketIOCodec.defaultMaxAttachmentBytes, ordered: Bool = false,
        inspect: @escaping @Sendable (TokenInspection) -> Void = { _ in }, sink: @escaping SocketIOProxy.Sink = { _, _, _ in 0 }
    ) {
        precondition(!(ordered && faults != nil), "the fault stage decides on each packet's records: they cannot wait")
        self.faults = faults
        self.parser = parser
        self.maxAttachmentBytes = maxAttachmentBytes
        self.sink = sink
        self.inspect = inspect
        self.ordered = ordered ? ObservationQueue() : nil
        self.ordered?.handle { [weak self] entries in
            guard let self else { return }
            for entry in entries { self.apply(entry.event, at: entry.time) }
        }
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
        begin(connection)
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

    // MARK: Events, from the loops

    /// A frame of the conn: its records, the conn's end at a close packet, its new tokens inspected.
    func observe(_ frame: TrafficDecoder.Frame, dir: Direction, on connection: ProxyConnection) {
        guard let ordered else { return apply(.frame(frame, dir, connection), at: nil) }
        ordered.add(.frame(frame, dir, connection), bytes: frame.size)
    }

    /// A handshake's answer: its open packet, then the `session` record with the sid it told, then
    /// the request's `tokens` inspected. The sid is filed at once, whatever waits: the client's
    /// next request carries it.
    func observeHandshake(_ frame: TrafficDecoder.Frame?, session: SessionRecord, tokens: HandshakeTokens, on connection: ProxyConnection) {
        guard let ordered else { return apply(.handshake(frame, session, tokens: tokens, connection), at: nil) }
        if let frame, let sid = ConnectionObservation.handshakeSid(in: frame, engineVersion: connection.engineVersion) {
            tables.withLock { $0.bySid[sid] = connection }
        }
        ordered.add(.handshake(frame, session, tokens: tokens, connection), bytes: frame?.size ?? 0)
    }

    /// Tokens a WebSocket's handshake request carried, inspected when new to the conn.
    func reportTokens(_ tokens: HandshakeTokens, on connection: ProxyConnection) {
        guard !tokens.isEmpty else { return }
        handle(.tokens(tokens, connection))
    }

    /// Records `body` unless the conn is closed, so no record of a conn is written after its
    /// `close`; without a conn, a record of the proxy's. Returns its `seq` when handled at once
    /// (0 while it waits), nil once the conn is closed.
    @discardableResult
    func emit(_ body: CaptureRecord.Body, on connection: ProxyConnection?) -> Int? {
        guard ordered == nil else {
            handle(.record(body, connection))
            return 0
        }
        return emitNow(body, on: connection, at: nil)
    }

    /// Something the conn's `close` must wait for has begun.
    func begin(_ connection: ProxyConnection) {
        handle(.begin(connection))
    }

    /// It has ended; writes the `close` that waited for it, if it was the last, and returns it
    /// when handled at once.
    @discardableResult
    func end(_ connection: ProxyConnection) -> CloseRecord? {
        guard ordered == nil else {
            handle(.end(connection))
            return nil
        }
        return endNow(connection, at: nil)
    }

    /// Decides the conn's end, and writes its `close` now unless, with `waitingForActivity`,
    /// requests or inspections are still going on (``end(_:)`` writes it then). A forced close keeps
    /// the reason decided first. Returns the `close` written, when handled at once.
    @discardableResult
    func close(_ connection: ProxyConnection, _ record: CloseRecord, waitingForActivity: Bool) -> CloseRecord? {
        guard ordered == nil else {
            handle(.close(connection, record, waitingForActivity: waitingForActivity))
            return nil
        }
        return closeNow(connection, record, waitingForActivity: waitingForActivity, at: nil)
    }

    /// Lets go the records of conns that have waited `releaseAfter` seconds for a first Socket.IO
    /// packet or for their sid (they are JSON sessions as far as anyone can tell, and a capture
    /// must not sit on them), and closes polling conns gone quiet: no request in flight and none
    /// for their session's heartbeat window (pingInterval + pingTimeout, and `grace`: its server
    /// has ended it by then) or, when the window is not known, for `idleTimeout` seconds.
    func sweep(releaseAfter: Double, idleTimeout: Double, grace: Double) {
        handle(.sweep(releaseAfter: releaseAfter, idleTimeout: idleTimeout, grace: grace))
    }

    /// Returns once every event so far is recorded.
    func flush() async {
        await ordered?.flush()
    }

    private func handle(_ event: Event) {
        guard let ordered else { return apply(event, at: nil) }
        ordered.add(event)
    }

    // MARK: Handling them, in order

    /// Handles an event seen at `time` (nil: now, the capture stamping its records).
    private func apply(_ event: Event, at time: Double?) {
        switch event {
        case .frame(let frame, let dir, let connection):
            follow(observeNow(frame, dir: dir, on: connection, seqs: false, at: time).observed, on: connection, at: time)
        case .handshake(let frame, let session, let tokens, let connection):
            let observed = connection.state.withLock { state in
                let observed = state.recorder.observeHandshake(frame, session: session, at: time ?? CaptureClock.secondsSince1970()) { records in
                    link(&records, dir: .serverToClient, on: connection)
                }
                // Protocol v4 joins `/` in the handshake's answer (`40` after the open packet).
                noteNamespaces(observed, in: &state)
                _ = written(observed, on: connection, state, seqs: false, at: time)
                return observed
            }
            reportNow(tokens, on: connection)
            follow(observed, on: connection, at: time)
        case .tokens(let tokens, let connection):
            reportNow(tokens, on: connection)
        case .record(let body, let connection):
            emitNow(body, on: connection, at: time)
        case .begin(let connection):
            connection.state.withLock { $0.recorder.begin() }
        case .end(let connection):
            endNow(connection, at: time)
        case .close(let connection, let record, let waiting):
            closeNow(connection, record, waitingForActivity: waiting, at: time)
        case .sweep(let releaseAfter, let idleTimeout, let grace):
            let now = time ?? CaptureClock.secondsSince1970()
            releaseHeld(now: now, after: releaseAfter, at: time)
            for (connection, quiet) in idle(now: now, timeout: idleTimeout, grace: grace) {
                let seconds = quiet == quiet.rounded() ? String(Int(quiet)) : String((quiet * 10).rounded() / 10)
                let record = CloseRecord(by: .proxy, reason: "no request for \(seconds) s: the session has expired")
                closeNow(connection, record, waitingForActivity: false, at: time)
            }
        }
    }

    /// Decodes a frame of the conn under its own lock and writes its records; a sid its open
    /// packet tells is filed at once, so later requests carrying it find this conn. Returns what
    /// the frame gave and, with `seqs` (the fault stage names packets by them), the `seq` of each
    /// of its decoded records (0 for one that waits); without, none are gathered (the relay's path).
    private func observeNow(
        _ frame: TrafficDecoder.Frame, dir: Direction, on connection: ProxyConnection, seqs: Bool, at time: Double?
    ) -> (observed: ConnectionRecorder.Observed, seqs: [Int]) {
        connection.state.withLock { state in
            let now = time ?? CaptureClock.secondsSince1970()
            let observed = state.recorder.observe(frame, dir: dir, at: now) { records in link(&records, dir: dir, on: connection) }
            state.lastSeen = now
            noteNamespaces(observed, in: &state)
            return (observed, written(observed, on: connection, state, seqs: seqs, at: time))
        }
    }

    /// The fault stage's: a frame's records written at once, and their `seq`s to decide on; what
    /// they call for (``follow(_:on:)``) is the caller's, after its own records.
    func observeForDecision(_ frame: TrafficDecoder.Frame, dir: Direction, on connection: ProxyConnection) -> (observed: ConnectionRecorder.Observed, seqs: [Int]) {
        precondition(ordered == nil, "the fault stage's records are written at once")
        return observeNow(frame, dir: dir, on: connection, seqs: true, at: nil)
    }

    /// What a frame's records call for: the conn's end at a close packet, its tokens inspected.
    func follow(_ observed: ConnectionRecorder.Observed, on connection: ProxyConnection, at time: Double? = nil) {
        if let side = observed.closePacketFrom { closeNow(connection, CloseRecord(by: side, reason: "close packet"), waitingForActivity: true, at: time) }
        for sighting in observed.tokens { inspectNow(sighting.token, source: sighting.source, nsp: sighting.nsp, on: connection) }
    }

    private func reportNow(_ tokens: HandshakeTokens, on connection: ProxyConnection) {
        for (token, source) in tokens where connection.state.withLock({ $0.recorder.firstSighting(of: token, source: source, nsp: nil) }) {
            inspectNow(token, source: source, nsp: nil, on: connection)
        }
    }

    /// A token new to the conn, inspected; the conn's `close` waits for its record.
    private func inspectNow(_ token: String, source: TokenSource, nsp: String?, on connection: ProxyConnection) {
        connection.state.withLock { $0.recorder.begin() }
        inspect(TokenInspection(token: token, source: source, nsp: nsp, connection: connection))
    }

    /// The namespaces the client joined or left, for the live API.
    private func noteNamespaces(_ observed: ConnectionRecorder.Observed, in state: inout ProxyConnection.State) {
        for body in observed.decoded {
            if case .packet(let packet) = body, packet.type == .connect || packet.type == .disconnect { state.gate.note(packet) }
        }
    }

    /// Writes what `observed` gave and files a learned sid; the seqs of the frame's own records.
    /// Called with the conn's lock held.
    private func written(
        _ observed: ConnectionRecorder.Observed, on connection: ProxyConnection, _ state: ProxyConnection.State, seqs wanted: Bool, at time: Double?
    ) -> [Int] {
        if let sid = observed.learnedSid { tables.withLock { $0.bySid[sid] = connection } }
        guard wanted else {
            for stamped in observed.records { _ = sink(stamped.body, connection.id, time) }
            return []
        }
        let seqs = observed.records.map { sink($0.body, connection.id, time) }
        // The frame's own records are the last ones written, unless they wait with the others.
        guard !state.recorder.isHolding, seqs.count >= observed.decoded.count else { return Array(repeating: 0, count: observed.decoded.count) }
        return Array(seqs.suffix(observed.decoded.count))
    }

    /// Connection-state recovery across conns (the table is the tracker's). Called with the conn's lock held.
    private func link(_ records: inout [CaptureRecord.Body], dir: Direction, on connection: ProxyConnection) {
        guard records.contains(where: { if case .packet(let packet) = $0 { packet.type == .connect } else { false } }) else { return }
        tables.withLock { $0.recoveries.link(&records, dir: dir, conn: connection.id) }
    }

    @discardableResult
    private func emitNow(_ body: CaptureRecord.Body, on connection: ProxyConnection?, at time: Double?) -> Int? {
        guard let connection else { return sink(body, nil, time) }
        return connection.state.withLock { state in
            guard !state.recorder.isClosed else { return nil }
            let written = state.recorder.record(body, at: time ?? CaptureClock.secondsSince1970()).map { sink($0.body, connection.id, time) }
            return written.last ?? 0
        }
    }

    private func releaseHeld(now: Double, after: Double, at time: Double?) {
        let open = tables.withLock { Array($0.open.values) }
        for connection in open {
            connection.state.withLock { state in
                for stamped in state.recorder.releaseHeld(now: now, after: after) { _ = sink(stamped.body, connection.id, time) }
            }
        }
    }

    @discardableResult
    private func endNow(_ connection: ProxyConnection, at time: Double?) -> CloseRecord? {
        connection.state.withLock { state in
            finishing(state.recorder.end(at: time ?? CaptureClock.secondsSince1970()), on: connection, sid: state.recorder.observation.sid, at: time)
        }
    }

    @discardableResult
    private func closeNow(_ connection: ProxyConnection, _ record: CloseRecord, waitingForActivity: Bool, at time: Double?) -> CloseRecord? {
        connection.state.withLock { state in
            finishing(
                state.recorder.close(record, at: time ?? CaptureClock.secondsSince1970(), waitingForActivity: waitingForActivity), on: connection,
                sid: state.recorder.observation.sid, at: time
            )
        }
    }

    /// Writes a conn's last records and forgets it once it is closed. Called with the conn's lock held.
    private func finishing(_ records: [ConnectionRecorder.Stamped], on connection: ProxyConnection, sid: String?, at time: Double?) -> CloseRecord? {
        var closed: CloseRecord?
        for stamped in records {
            _ = sink(stamped.body, connection.id, time)
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

    /// Polling conns gone quiet at `now`, with how long (see ``sweep(releaseAfter:idleTimeout:grace:)``).
    private func idle(now: Double, timeout: Double, grace: Double) -> [(ProxyConnection, quiet: Double)] {
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
