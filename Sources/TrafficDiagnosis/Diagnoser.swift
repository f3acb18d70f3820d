public import TrafficCapture

/// Works out known failures from a capture's records, taken in `seq` order: behind a live
/// recording (the proxy, `import`, `sniff`) or over any capture file (`siotap diagnose`). Records
/// in, diagnoses out, no I/O; what it decides depends on the records alone, so a capture diagnoses
/// the same live and offline. Each cause is said once per conn.
///
/// Memory is bounded whatever the input: a conn's state goes at its `close`, at most
/// ``maxConns`` conns are followed (the oldest is dropped beyond), and each keeps at most
/// ``maxPendingAcks`` unanswered acks, eight tokens and the last few failed upgrades. Each conn's
/// state is kept in a box of its own: a copy of a diagnoser shares them, so feed one only.
public struct Diagnoser {
    /// A diagnosis and the conn and time it belongs to (its `seq` is the capture's to give).
    public struct Diagnosis: Sendable, Hashable {
        public var conn: String?
        public var time: Double
        public var record: DiagnosisRecord
    }

    public static let maxConns = 50_000
    public static let maxPendingAcks = 1024
    /// Conns ended badly by one client within this many seconds, from this many on, are a storm.
    static let stormWindow = 60.0
    static let stormCount = 5

    /// Boxed: a conn's state is some 500 bytes, and a dictionary keeps room for a third more
    /// slots than it holds; with thousands of conns open, slots of eight bytes save the difference.
    var conns: [String: ConnSlot] = [:]
    /// Conn ids in the order they opened, to drop the oldest past ``maxConns``.
    var order: [String] = []
    var orderStart = 0
    /// Per client (address and user agent): when its conns ended badly, and their session records.
    var badEnds: [String: [(time: Double, seq: Int)]] = [:]
    var stormSaid: [String: Double] = [:]
    /// Idle times before an upstream closed a WebSocket, for "as c3 did".
    var idleCloses: [(conn: String, seconds: Double)] = []
    var lastTime = 0.0

    public init() {}

    /// Takes the next record; returns what it shows, if anything.
    public mutating func take(_ record: CaptureRecord) -> [Diagnosis] {
        let time = RFC3339.parse(record.ts) ?? lastTime
        lastTime = max(lastTime, time)
        guard let id = record.conn else { return [] }
        if case .session(let session) = record.body {
            open(id, session, seq: record.seq, time: time)
            return (conns[id]?.conn.corsRefusal(session) ?? []).map { Diagnosis(conn: id, time: time, record: $0) }
        }
        guard let slot = conns[id] else { return [] }
        // Changed where it is kept: a copy would share its arrays and dictionaries with the one
        // left in `conns`, and the first change to each (a pending ack) would copy it whole.
        let (found, ended) = Self.take(record, time: time, into: &slot.conn, earlierIdleCloses: idleCloses)
        guard ended else { return found.map { Diagnosis(conn: id, time: time, record: $0) } }
        conns[id] = nil
        let conn = slot.conn
        if let idle = conn.idleClose { remember(idleClose: (id, idle)) }
        return (found + endedBadly(conn, time: time)).map { Diagnosis(conn: id, time: time, record: $0) }
    }

    /// What a record of a known conn shows, and whether it ended the conn.
    private static func take(
        _ record: CaptureRecord, time: Double, into conn: inout Conn, earlierIdleCloses: [(conn: String, seconds: Double)]
    ) -> (found: [DiagnosisRecord], ended: Bool) {
        var found: [DiagnosisRecord] = []
        if let pending = conn.pendingRefusal, time - pending.time >= 1 { found += conn.decidePendingRefusal() }
        switch record.body {
        case .session, .info, .diagnosis: break
        case .engine(let engine): conn.take(engine, seq: record.seq, time: time)
        case .packet(let packet): found += conn.take(packet, seq: record.seq, time: time)
        case .jwt(let token): found += conn.take(token, seq: record.seq)
        case .error(let error): found += conn.take(error, seq: record.seq, time: time)
        // Traffic changed on purpose (a fault, a person acting on the conn) explains what it causes.
        case .fault, .intervention: conn.faulted = true
        case .close(let close):
            found += conn.end(close, seq: record.seq, time: time, earlierIdleCloses: earlierIdleCloses)
            return (found, true)
        }
        return (found, false)
    }

    /// The capture ended: a refusal still waiting for its token is decided; conns still open are
    /// otherwise left as they are (their end is not in it).
    public mutating func finish() -> [Diagnosis] {
        var found: [Diagnosis] = []
        for id in order[orderStart...] {
            guard let slot = conns[id], slot.conn.pendingRefusal != nil else { continue }
            found += slot.conn.decidePendingRefusal().map { Diagnosis(conn: id, time: lastTime, record: $0) }
        }
        conns = [:]
        return found
    }

    private mutating func open(_ id: String, _ session: SessionRecord, seq: Int, time: Double) {
        guard conns[id] == nil else { return }
        conns[id] = ConnSlot(Conn(session: session, seq: seq, time: time))
        order.append(id)
        if conns.count > Self.maxConns {
            while orderStart < order.count, conns.count > Self.maxConns {
                conns[order[orderStart]] = nil
                orderStart += 1
            }
        }
        if orderStart > 4096, orderStart * 2 > order.count {
            order.removeFirst(orderStart)
            orderStart = 0
        }
    }

    private mutating func remember(idleClose: (conn: String, seconds: Double)) {
        idleCloses.append(idleClose)
        if idleCloses.count > 16 { idleCloses.removeFirst() }
    }

    /// A client whose conns keep ending badly (refused, or cut soon after they opened) is
    /// reconnecting in a loop.
    private mutating func endedBadly(_ conn: Conn, time: Double) -> [DiagnosisRecord] {
        guard conn.endedBadly(at: time), let client = conn.clientKey else { return [] }
        var ends = badEnds[client, default: []].filter { time - $0.time <= Self.stormWindow }
        ends.append((time, conn.sessionSeq))
        if ends.count > Self.stormCount * 4 { ends.removeFirst(ends.count - Self.stormCount * 4) }
        badEnds[client] = ends
        if badEnds.count > 4096 { badEnds = badEnds.filter { time - ($0.value.last?.time ?? 0) <= Self.stormWindow } }
        guard ends.count >= Self.stormCount, time - (stormSaid[client] ?? -.infinity) > Self.stormWindow else { return [] }
        stormSaid[client] = time
        if stormSaid.count > 4096 { stormSaid = stormSaid.filter { time - $0.value <= Self.stormWindow } }
        let span = max(1, Int((time - ends[0].time).rounded()))
        let who = conn.clientDescription
        return [DiagnosisCatalog.reconnectStorm.record(
            "\(who) opened \(ends.count) conns in \(span) s that each ended badly (refused, or cut within \(Int(Conn.shortLived)) s); "
                + "the last: \(conn.endDescription). A client retrying this fast adds load and will not succeed until the cause is fixed: "
                + "fix the cause, and give the client a reconnection delay with backoff (reconnectionDelay, reconnectionDelayMax).",
            evidence: ends.suffix(Self.stormCount).map(\.seq)
        )]
    }
}

/// Where a conn's state is kept, changed in place.
final class ConnSlot {
    var conn: Conn
    init(_ conn: Conn) { self.conn = conn }
}

extension DiagnosisCatalog.Entry {
    func record(_ message: String, evidence: [Int]) -> DiagnosisRecord {
        DiagnosisRecord(code: code, severity: severity, message: message, evidence: evidence.filter { $0 > 0 }, docs: docs)
    }
}
