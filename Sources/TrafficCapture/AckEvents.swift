import Synchronization

/// Which event an ack answers, for readers that see records one at a time (the live view, its
/// filter): an event with an ack id is remembered by conn, namespace, id and direction until its
/// ack comes the other way. Bounded: past `capacity` unanswered events the oldest are forgotten
/// (their acks then show without a name), so a peer that never acks grows nothing.
public final class AckEvents: Sendable {
    private struct Key: Hashable {
        var conn: String?
        var nsp: String
        var id: UInt64
        /// The event's direction.
        var dir: Direction
    }

    private struct State {
        var names: [Key: String] = [:]
        var order: [Key] = []
        var start = 0
    }

    private let state = Mutex(State())
    private let capacity: Int

    public init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    /// Events waiting for their ack; and the entries kept to forget the oldest (for tests of the bound).
    public var waiting: Int { state.withLock { $0.names.count } }
    public var remembered: Int { state.withLock { $0.order.count - $0.start } }

    /// Names longer than this are not kept (their acks show unnamed): a peer sending events with
    /// huge names it never acks holds at most `capacity` × this many bytes here.
    public static let longestName = 256

    /// Takes a record in capture order; for an ack, the name of the event it answers (the ack is
    /// then forgotten), nil otherwise or when the event was not seen.
    @discardableResult
    public func take(_ record: CaptureRecord) -> String? {
        guard case .packet(let packet) = record.body else { return nil }
        return take(packet, conn: record.conn)
    }

    /// The same for a packet of `conn`.
    @discardableResult
    public func take(_ packet: PacketRecord, conn: String?) -> String? {
        guard let id = packet.id else { return nil }
        return state.withLock { state in
            if packet.type.isAck {
                let key = Key(conn: conn, nsp: packet.nsp, id: id, dir: packet.dir == .clientToServer ? .serverToClient : .clientToServer)
                return state.names.removeValue(forKey: key)
            }
            guard let event = packet.event, event.utf8.count <= Self.longestName else { return nil }
            let key = Key(conn: conn, nsp: packet.nsp, id: id, dir: packet.dir)
            if state.names.updateValue(event, forKey: key) == nil { state.order.append(key) }
            // Oldest out first. The order list also holds events answered since: rebuilt from those
            // still waiting whenever it is twice the capacity, so it stays bounded too.
            while state.names.count > capacity, state.start < state.order.count {
                state.names.removeValue(forKey: state.order[state.start])
                state.start += 1
            }
            if state.order.count - state.start > 2 * capacity || state.start > capacity {
                let names = state.names
                state.order = state.order[state.start...].filter { names[$0] != nil }
                state.start = 0
            }
            return nil
        }
    }
}
