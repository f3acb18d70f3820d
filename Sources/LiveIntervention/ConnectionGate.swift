public import SocketIOProtocol
public import TrafficCapture

/// One conn's side of live intervention, as a value, for each direction: the packets a
/// breakpoint holds and those waiting behind them (a direction's order is kept), the frames of a
/// binary packet still coming, and the ack ids of the proxy's own emits.
///
/// The proxy decides each Socket.IO packet with ``admit(_:seq:dir:hold:)``: it goes on at once
/// (`.pass`), or the gate keeps it, and ``resolve(seq:_:)`` later gives back what may go (the
/// released packet and everything behind it up to the next one still held). Engine.IO packets
/// (pings, pongs) never come here: a held conn keeps its heartbeat.
public struct ConnectionGate: Sendable {
    /// Ack ids the proxy gives its own emits start here. Clients and servers number their acks
    /// from 0 up, one per emit that asks for one, per connection: a peer would need a billion of
    /// them to reach this range. An ack in it that answers an emit of the proxy's is taken out of
    /// the stream; any other goes on.
    public static let firstInjectedAckID: UInt64 = 1_000_000_000

    /// At most this many packets wait behind a held one in a direction; past it, the hold gives
    /// way (the oldest held packet goes on unchanged), so a held conn cannot take the proxy's memory.
    public static let queueLimit = 10_000
    public static let queueByteLimit = 16 << 20

    public struct Hold: Sendable, Hashable {
        public var breakpoint: String
        public var by: InterventionRecord.Actor
        /// Seconds since 1970.
        public var since: Double
        public var record: PacketRecord

        public init(breakpoint: String, by: InterventionRecord.Actor, since: Double, record: PacketRecord) {
            self.breakpoint = breakpoint
            self.by = by
            self.since = since
            self.record = record
        }
    }

    public enum Resolution: Sendable, Hashable {
        /// It goes on as it came.
        case release
        /// It goes on as these packets instead (edited).
        case replace([EnginePacket])
        case drop
    }

    struct Entry: Sendable {
        var seq: Int
        var packets: [EnginePacket]
        var bytes: Int
        var hold: Hold?
        var resolution: Resolution?
        var isWaiting: Bool { hold != nil && resolution == nil }
    }

    public enum Admission: Sendable, Equatable {
        /// Nothing holds its direction: it goes on now.
        case pass
        /// Held by its breakpoint, or behind a held packet: it goes when ``resolve(seq:_:)`` says.
        case kept
        /// Kept, but its direction's queue is full: the oldest hold must give way (resolve `seq`
        /// with its own packets).
        case overflowing(oldestHeld: Int)
    }

    /// An emit of the proxy's that asked for an ack.
    public struct Asked: Sendable, Hashable {
        public var emitSeq: Int
        /// The direction of the emit; its answer comes the other way.
        public var dir: Direction
    }

    private var queues = PerDirection<[Entry]>([])
    private var partial = PerDirection<[EnginePacket]>([])
    private var nextAckID = firstInjectedAckID
    private var asked: [UInt64: Asked] = [:]
    /// The namespaces the client joined (a server's CONNECT answer), in order.
    public private(set) var namespaces: [String] = []

    public init() {}

    // MARK: Packets

    /// A frame of a packet that waits for its binary attachments.
    public mutating func collect(_ packet: EnginePacket, dir: Direction) {
        partial[dir].append(packet)
    }

    /// The frames of the packet `last` completes (its attachments' frames before it).
    public mutating func group(completedBy last: EnginePacket, dir: Direction) -> [EnginePacket] {
        defer { partial[dir] = [] }
        return partial[dir] + [last]
    }

    /// Whether `dir` has packets kept.
    public func isHolding(_ dir: Direction) -> Bool { !queues[dir].isEmpty }

    public mutating func admit(_ packets: [EnginePacket], seq: Int, dir: Direction, hold: Hold?) -> Admission {
        guard hold != nil || !queues[dir].isEmpty else { return .pass }
        let bytes = packets.reduce(0) { $0 + $1.approximateSize }
        queues[dir].append(Entry(seq: seq, packets: packets, bytes: bytes, hold: hold))
        let queued = queues[dir]
        if queued.count > Self.queueLimit || queued.reduce(0, { $0 + $1.bytes }) > Self.queueByteLimit,
            let oldest = queued.first(where: \.isWaiting)
        {
            return .overflowing(oldestHeld: oldest.seq)
        }
        return .kept
    }

    /// Decides a held packet. Returns its direction, its hold, and the packets now free to go in
    /// order; nil when `seq` is not held (never was, or already decided).
    public mutating func resolve(seq: Int, _ resolution: Resolution) -> (dir: Direction, hold: Hold, released: [EnginePacket])? {
        for dir in [Direction.clientToServer, .serverToClient] {
            guard let index = queues[dir].firstIndex(where: { $0.seq == seq && $0.isWaiting }), let hold = queues[dir][index].hold else { continue }
            queues[dir][index].resolution = resolution
            return (dir, hold, popReady(dir))
        }
        return nil
    }

    private mutating func popReady(_ dir: Direction) -> [EnginePacket] {
        var released: [EnginePacket] = []
        var count = 0
        for entry in queues[dir] {
            if entry.isWaiting { break }
            count += 1
            switch entry.resolution {
            case .replace(let packets)?: released += packets
            case .drop?: break
            case .release?, nil: released += entry.packets
            }
        }
        queues[dir].removeFirst(count)
        return released
    }

    /// The packets held now (`seq`, its hold, how many wait behind it).
    public var held: [(seq: Int, dir: Direction, hold: Hold, waiting: Int)] {
        var result: [(Int, Direction, Hold, Int)] = []
        for dir in [Direction.clientToServer, .serverToClient] {
            let queue = queues[dir]
            for (index, entry) in queue.enumerated() where entry.isWaiting {
                result.append((entry.seq, dir, entry.hold!, queue.count - index - 1))
            }
        }
        return result
    }

    /// The conn ended: whatever was kept is gone with it. Returns the holds that were waiting.
    public mutating func end() -> [(seq: Int, dir: Direction, hold: Hold)] {
        let waiting = held.map { ($0.seq, $0.dir, $0.hold) }
        queues = PerDirection([])
        partial = PerDirection([])
        asked = [:]
        return waiting
    }

    // MARK: The proxy's emits

    /// An ack id for an emit of the proxy's, in the range peers do not use.
    public mutating func reserveAckID() -> UInt64 {
        defer { nextAckID += 1 }
        return nextAckID
    }

    /// The emit `emitSeq`, sent toward `dir`'s receiver, waits for the answer `ackID`.
    public mutating func expect(ackID: UInt64, emitSeq: Int, dir: Direction) {
        asked[ackID] = Asked(emitSeq: emitSeq, dir: dir)
    }

    /// The emit an ack going `dir` answers, when it answers one of the proxy's (it is then taken
    /// out of the stream). Each is answered once.
    public mutating func answer(ackID: UInt64, dir: Direction) -> Asked? {
        guard ackID >= Self.firstInjectedAckID, let emit = asked[ackID], emit.dir != dir else { return nil }
        asked[ackID] = nil
        return emit
    }

    /// An emit's wait ended without an answer: an answer that comes later goes on to the peer.
    public mutating func forget(ackID: UInt64) {
        asked[ackID] = nil
    }

    // MARK: Namespaces

    /// A packet went by: a server's CONNECT answer joins its namespace, a DISCONNECT leaves it.
    public mutating func note(_ packet: PacketRecord) {
        switch (packet.type, packet.dir) {
        case (.connect, .serverToClient):
            if !namespaces.contains(packet.nsp) { namespaces.append(packet.nsp) }
        case (.disconnect, _):
            namespaces.removeAll { $0 == packet.nsp }
        default: break
        }
    }
}

extension EnginePacket {
    /// About how many bytes it holds, for the gate's limit.
    var approximateSize: Int {
        switch payload {
        case .text(let text): text.utf8.count + 16
        case .binary(let bytes): bytes.count + 16
        case .none: 16
        }
    }
}
