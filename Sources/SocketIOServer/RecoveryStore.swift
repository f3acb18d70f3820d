import SocketIOProtocol
import Synchronization

/// Connection-state recovery (socket.io 4.6+'s `connectionStateRecovery`) for one namespace: the
/// events sent while it is on, each with an offset, and the sessions of sockets that lost their
/// connection, by private id, for `maxDisconnection` seconds. A client that comes back within
/// that time with its pid and the last offset it got is given its socket again (same id, rooms and
/// data) and the events it missed.
final class RecoveryStore: Sendable {
    struct Sent: Sendable {
        var offset: String
        var rooms: Set<String>
        var exceptRooms: Set<String>
        var exceptSocket: String?
        var data: [JSONValue]
        var at: Double
    }

    /// A socket's state kept while its client is away.
    struct Session: Sendable {
        var sid: String
        var pid: String
        var rooms: Set<String>
        var data: [String: JSONValue]
        var disconnectedAt: Double
    }

    /// What a recovering client gets back.
    struct Restored: Sendable {
        var session: Session
        /// The events it missed, in order, each with its offset last.
        var missed: [[JSONValue]]
    }

    /// socket.io's reasons after which a session is kept (not those where a side left on purpose).
    static let recoverableReasons: Set<String> = [
        "transport error", "transport close", "forced close", "ping timeout", "server shutting down", "forced server close",
    ]

    let maxDisconnection: Double
    private struct State {
        var sent: [Sent] = []
        var sessions: [String: Session] = [:]
        var nextOffset: UInt64 = 0
    }

    private let state = Mutex(State())

    init(maxDisconnectionMilliseconds: Int) {
        maxDisconnection = Double(maxDisconnectionMilliseconds) / 1000
    }

    private static let epoch = ContinuousClock.now

    /// Seconds on a clock that only goes forward.
    static var now: Double {
        let elapsed = epoch.duration(to: .now).components
        return Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
    }

    /// Keeps an event for clients that may come back; returns the offset to send with it.
    func record(_ data: [JSONValue], rooms: Set<String>, exceptRooms: Set<String>, exceptSocket: String?, now: Double) -> String {
        state.withLock { state in
            state.nextOffset += 1
            let offset = "\(state.nextOffset)"
            prune(&state, now: now)
            let sent = data + [.string(offset)]
            state.sent.append(Sent(offset: offset, rooms: rooms, exceptRooms: exceptRooms, exceptSocket: exceptSocket, data: sent, at: now))
            return offset
        }
    }

    func persist(_ session: Session) {
        state.withLock { $0.sessions[session.pid] = session }
    }

    /// The session of `pid`, and what it missed after `offset`; nil when it is unknown, expired, or
    /// the offset is no longer kept (the client then gets a new socket, as socket.io does).
    func restore(pid: String, offset: String, now: Double) -> Restored? {
        state.withLock { state in
            prune(&state, now: now)
            guard let session = state.sessions.removeValue(forKey: pid),
                let index = state.sent.firstIndex(where: { $0.offset == offset })
            else { return nil }
            let reached = session.rooms.union([session.sid])
            let missed = state.sent[(index + 1)...].filter { sent in
                guard sent.exceptSocket != session.sid, reached.isDisjoint(with: sent.exceptRooms) else { return false }
                return sent.rooms.isEmpty || !reached.isDisjoint(with: sent.rooms)
            }
            return Restored(session: session, missed: missed.map(\.data))
        }
    }

    private func prune(_ state: inout State, now: Double) {
        let horizon = now - maxDisconnection
        if let first = state.sent.firstIndex(where: { $0.at >= horizon }) {
            if first > 0 { state.sent.removeFirst(first) }
        } else {
            state.sent = []
        }
        state.sessions = state.sessions.filter { $0.value.disconnectedAt >= horizon }
    }
}
