import SocketIOProtocol
import TrafficCapture

/// What a replayed client packet waits for before it is sent.
///
/// The capture's order across conns holds: a client packet goes once every server packet recorded
/// before it has arrived. Captures made before records were stamped ahead of forwarding (siotap
/// before #32) can hold a broadcast *before* the emit that caused it: waiting for it then waits
/// for something only the waiting packet can bring. Such an inversion has a signature: a pushed
/// event on another conn, recorded at most ``window`` before the client packet, carrying a string
/// the client packet carries too (the broadcast repeats what was sent). Those are not waited for;
/// instead the packet waits until every client packet recorded before that event has been sent,
/// so the server still gets the capture's client packets in the capture's order.
struct CrossConnOrder: Sendable {
    /// How far apart an effect and its cause can be recorded in the wrong order: a relay that
    /// stamped records after forwarding did so within a few milliseconds, even on a loaded machine.
    static let window = 0.020
    /// At most this many recent pushed events are looked at per client packet, and this many
    /// strings of a packet are compared: a capture of any size costs linear time.
    static let eventsLooked = 256
    static let stringsCompared = 64

    struct Exemption: Sendable, Equatable {
        /// The server packets (by `seq`) the client packet does not wait for.
        var excused: Set<Int>
        /// The client packet waits until every client packet recorded before this `seq` has been sent.
        var sentBefore: Int
    }

    /// The exemptions of the client packets that have one, by their `seq`.
    let exemptions: [Int: Exemption]

    struct Packet {
        var seq: Int
        var conn: String
        var time: Double?
        var record: PacketRecord
    }

    init(_ packets: [Packet]) {
        var exemptions: [Int: Exemption] = [:]
        var recentPushes: [(packet: Packet, strings: Set<String>)] = []
        for packet in packets.sorted(by: { $0.seq < $1.seq }) {
            if packet.record.dir == .serverToClient {
                guard packet.record.type == .event || packet.record.type == .binaryEvent, packet.time != nil else { continue }
                let strings = Self.strings(of: packet.record)
                guard !strings.isEmpty else { continue }
                recentPushes.append((packet, strings))
                if recentPushes.count > 2 * Self.eventsLooked { recentPushes.removeFirst(Self.eventsLooked) }
                continue
            }
            guard let time = packet.time else { continue }
            let strings = Self.strings(of: packet.record)
            guard !strings.isEmpty else { continue }
            var excused = Set<Int>()
            var sentBefore = Int.max
            for push in recentPushes.suffix(Self.eventsLooked).reversed() {
                guard let pushed = push.packet.time, time - pushed <= Self.window else { break }
                guard push.packet.conn != packet.conn, !push.strings.isDisjoint(with: strings) else { continue }
                excused.insert(push.packet.seq)
                sentBefore = min(sentBefore, push.packet.seq)
            }
            if !excused.isEmpty { exemptions[packet.seq] = Exemption(excused: excused, sentBefore: sentBefore) }
        }
        self.exemptions = exemptions
    }

    /// The strings a packet carries (its arguments or data, not its event name), up to a bound.
    static func strings(of record: PacketRecord) -> Set<String> {
        var found = Set<String>()
        var stack: [JSONValue] = record.args ?? record.data.map { [$0] } ?? []
        while let value = stack.popLast(), found.count < stringsCompared {
            switch value {
            case .string(let string) where !string.value.isEmpty: found.insert(string.value)
            case .array(let items): stack.append(contentsOf: items)
            case .object(let object): stack.append(contentsOf: object.members.map(\.value))
            default: break
            }
        }
        return found
    }
}
