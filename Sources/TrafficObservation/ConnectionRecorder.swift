public import TrafficCapture
public import SocketIOProtocol

/// One conn's recorder, the same for the live proxy and for `siotap import`/`sniff`: frames and
/// transport events in, the records to write out, in order. A value; its owner keeps it (under a
/// lock in the proxy, in a table in import) and writes what it returns.
///
/// What it decides, so that both recorders decide it alike:
/// - **Holding.** While the session's parser is not known, its records wait for the first
///   Socket.IO packet (which tells it, and the `session` record says it); a WebSocket-only
///   session's `session` record waits for the open packet's sid. The owner lets them go after a
///   while (``releaseHeld(now:after:)``): a session that never speaks Socket.IO is JSON as far as
///   anyone can tell. They go at once past ``maxHeld`` records or bytes: a peer that sends
///   anything but Socket.IO (a stray binary message is an error record holding all its bytes)
///   must not make the recorder hold its traffic.
/// - **The end.** A close decided while requests are in flight waits for them (a long-poll the
///   server answers just after the client's close packet belongs to the session): ``begin()`` and
///   ``end(at:)`` count them. Nothing is recorded after the `close`.
/// - **Tokens.** Each is reported once per source and namespace (``ConnectionObservation``).
public struct ConnectionRecorder: Sendable {
    /// A record and when it was seen (seconds since 1970): the proxy's queue stamps its own time,
    /// import keeps the capture's.
    public struct Stamped: Sendable {
        public var body: CaptureRecord.Body
        public var time: Double
    }

    /// Where the conn is in its life.
    public enum Phase: Sendable, Equatable {
        case open
        /// Its end is decided; the `close` waits for the requests still in flight.
        case ending(CloseRecord)
        case closed
    }

    /// What one frame gave.
    public struct Observed: Sendable {
        /// To write now, in order (records that waited for the parser first).
        public var records: [Stamped] = []
        /// Tokens seen for the first time on this conn, to inspect.
        public var tokens: [TrafficDecoder.TokenSighting] = []
        /// The sid the frame's open packet told.
        public var learnedSid: String?
        /// A close packet's sender: the conn is over (see ``close(_:at:waitingForActivity:)``).
        public var closePacketFrom: Peer?
        /// The frame held a whole message that made no record (an attachment still to come).
        public var hadMessage = false
        /// The records the frame decoded, as bodies (the fault stage decides on its packets).
        public var decoded: [CaptureRecord.Body] = []
    }

    /// The most a conn's held records may number, and weigh (``CaptureRecord/Body/approximateSize``),
    /// before they go without waiting: the capture queue's own bounds see them only then.
    public static let maxHeld = (records: 256, bytes: 4 << 20)

    private struct Holding: Sendable {
        var records: [Stamped] = []
        var bytes = 0
        /// When the first held record came; nil before.
        var since: Double?
        /// Held only for the open packet's sid, the parser being known.
        var forSid = false
    }

    public private(set) var observation: ConnectionObservation
    public private(set) var phase = Phase.open
    private var holding: Holding?
    private var activity = 0

    /// Requests and inspections in flight.
    public var inFlight: Int { activity }

    /// `parser`: every session's, when it was given; nil: the first Socket.IO packet tells it.
    /// `maxAttachmentBytes`: the most a binary packet's attachments may weigh together.
    public init(engineVersion: EngineIOVersion, parser: SocketIOParser?, maxAttachmentBytes: Int = SocketIOCodec.defaultMaxAttachmentBytes) {
        observation = ConnectionObservation(engineVersion: engineVersion, parser: parser, maxAttachmentBytes: maxAttachmentBytes)
        holding = parser == nil ? Holding() : nil
    }

    public var isClosed: Bool { phase == .closed }
    public var isHolding: Bool { holding != nil }

    /// Decodes a frame seen at `time`. `link` may rewrite the decoded records before they are
    /// recorded (recovery links across conns, which only the owner's table knows).
    public mutating func observe(
        _ frame: TrafficDecoder.Frame, dir: Direction, at time: Double, link: (inout [CaptureRecord.Body]) -> Void = { _ in }
    ) -> Observed {
        let (output, learnedSid) = observation.observe(frame, dir: dir, now: time)
        return take(output, learnedSid: learnedSid, at: time, link: link)
    }

    /// A handshake's answer: its open packet decoded first (it tells the sid), then `session`
    /// recorded with that sid, then the answer's records. `frame` nil: a refused handshake, whose
    /// body is no payload.
    public mutating func observeHandshake(
        _ frame: TrafficDecoder.Frame?, session: SessionRecord, at time: Double, link: (inout [CaptureRecord.Body]) -> Void = { _ in }
    ) -> Observed {
        let (output, learnedSid) = frame.map { observation.observe($0, dir: .serverToClient, now: time) } ?? (TrafficDecoder.Output(), nil)
        var session = session
        if session.sid == nil { session.sid = observation.sid }
        let opening = record(.session(session), at: time)
        var observed = take(output, learnedSid: learnedSid, at: time, link: link)
        observed.records = opening + observed.records
        return observed
    }

    private mutating func take(
        _ output: TrafficDecoder.Output, learnedSid: String?, at time: Double, link: (inout [CaptureRecord.Body]) -> Void
    ) -> Observed {
        var output = output
        link(&output.records)
        var observed = Observed(learnedSid: learnedSid, hadMessage: output.hadMessage, decoded: output.records)
        if let parser = output.parserFound {
            observed.records += release(parser: parser)
        } else if learnedSid != nil, holding?.forSid == true {
            observed.records += release(parser: nil)
        }
        for body in output.records {
            observed.records += record(body, at: time)
            if case .engine(let engine) = body, engine.type == .close, observed.closePacketFrom == nil {
                observed.closePacketFrom = engine.dir == .clientToServer ? .client : .server
            }
        }
        observed.tokens = output.tokens.filter { observation.firstSighting(of: $0.token, source: $0.source, nsp: $0.nsp) }
        return observed
    }

    /// Whether a token seen outside a frame (a handshake's query or headers) is new to the conn.
    public mutating func firstSighting(of token: String, source: TokenSource, nsp: String?) -> Bool {
        observation.firstSighting(of: token, source: source, nsp: nsp)
    }

    /// A record of the conn: to write now, or held with the others; nothing once it is closed.
    public mutating func record(_ body: CaptureRecord.Body, at time: Double) -> [Stamped] {
        guard phase != .closed else { return [] }
        if holding == nil, case .session(let session) = body, session.sid == nil, observation.sid == nil {
            // A WebSocket-only session: its sid comes with the open packet, right after.
            holding = Holding(forSid: true)
        }
        guard holding != nil else { return [Stamped(body: body, time: time)] }
        holding!.records.append(Stamped(body: body, time: time))
        holding!.bytes += body.approximateSize
        if holding!.since == nil { holding!.since = time }
        guard holding!.records.count > Self.maxHeld.records || holding!.bytes > Self.maxHeld.bytes else { return [] }
        return release(parser: nil)
    }

    /// The held records, if they have waited `after` seconds by `now`: written as a JSON session's.
    /// A `session` record still waiting for the open packet's sid waits at least ``sidWait``: a
    /// starved machine can take more than half a second to pass it on, and without it the session
    /// has no sid in the capture.
    public mutating func releaseHeld(now: Double, after: Double) -> [Stamped] {
        guard let holding, let since = holding.since else { return [] }
        let waitsForSid = observation.sid == nil && holding.records.contains { if case .session(let session) = $0.body { session.sid == nil } else { false } }
        guard now - since >= (waitsForSid ? max(after, Self.sidWait) : after) else { return [] }
        return release(parser: nil)
    }

    /// How long a `session` record may wait for its sid (an open packet from a server that never
    /// sends one: its records go then, without it). As long as import waits for a parser.
    public static let sidWait = 5.0

    /// Writes what waited, the `session` record saying the parser, and the sid the open packet told.
    private mutating func release(parser: SocketIOParser?) -> [Stamped] {
        guard let held = holding?.records else {
            holding = nil
            return []
        }
        holding = nil
        // A handshake's open packet can be decoded before its `session` record is made (the
        // record needs the sid): the session record goes first.
        let ordered = held.filter { if case .session = $0.body { true } else { false } } + held.filter { if case .session = $0.body { false } else { true } }
        return ordered.map { stamped in
            guard case .session(var session) = stamped.body else { return stamped }
            if parser == .msgpack { session.parser = .msgpack }
            if session.sid == nil { session.sid = observation.sid }
            return Stamped(body: .session(session), time: stamped.time)
        }
    }

    /// A request (or a token inspection) the `close` must wait for has begun.
    public mutating func begin() { activity += 1 }

    /// It has ended: the `close` that waited for it, when it was the last.
    public mutating func end(at time: Double) -> [Stamped] {
        activity = max(0, activity - 1)
        guard activity == 0, case .ending(let record) = phase else { return [] }
        return finish(record, at: time)
    }

    /// Decides the conn's end. With `waitingForActivity`, the `close` waits for the requests in
    /// flight (and keeps the first reason decided); without (stopping, the capture's end, the idle
    /// sweep), it is written now.
    public mutating func close(_ record: CloseRecord, at time: Double, waitingForActivity: Bool = true) -> [Stamped] {
        switch phase {
        case .closed: return []
        case .ending(let decided): return waitingForActivity ? [] : finish(decided, at: time)
        case .open:
            if waitingForActivity, activity > 0 {
                phase = .ending(record)
                return []
            }
            return finish(record, at: time)
        }
    }

    private mutating func finish(_ record: CloseRecord, at time: Double) -> [Stamped] {
        var records = release(parser: nil)
        records.append(Stamped(body: .close(record), time: time))
        phase = .closed
        return records
    }
}
