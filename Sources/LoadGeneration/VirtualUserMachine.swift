import SocketIOProtocol

/// One virtual user's play of its conn, as a state machine: the session's packets and the clock
/// go in, what to send and what was measured come out. Its client packets go at their recorded
/// times (think times over `speed`); each ack is timed from its emit, each server event the capture
/// shows a packet caused from that packet. Nothing goes to a namespace before its CONNECT is
/// answered (socket.io closes a connection that sends to one it has not joined), and no DISCONNECT
/// before the answers awaited in its namespace (up to the timeout). The drivers
/// (``WebSocketUser`` and ``LongPollingUser`` on the event loop, ``UpgradingUser`` over siotap's client) only carry packets.
struct VirtualUserMachine {
    typealias Instant = ContinuousClock.Instant

    enum Action: Sendable {
        case send(SocketPacket)
        case connected(Duration)
        case ack(String, Duration)
        case event(String, Duration)
        case received(String)
        case error(LoadMetrics.ErrorKind)
        /// The play is over: end the session. `done`: the conn was played to its end.
        case finish(wasConnected: Bool, done: Bool)
    }

    private struct Waited {
        var effect: UserScript.Effect
        var since: Instant
    }

    private struct PendingAck {
        var id: UInt64
        var name: String
        var namespace: String
        var sent: Instant
    }

    let script: UserScript
    private let tokens: UserScript.Tokens?
    /// When the session was asked for: the connect time and the send times count from it.
    private let begin: Instant
    private let speed: Double
    private let timeout: Duration

    private var opened = false
    private var next = 0
    private var joined: [String] = []
    /// Since when the next send has waited for its namespace's answer.
    private var blockedSince: Instant?
    private var waiting: [Waited] = []
    private var acks: [PendingAck] = []
    private var nextAckID: UInt64 = 0
    private var settleBy: Instant?
    private(set) var isFinished = false

    init(script: UserScript, tokens: UserScript.Tokens?, begin: Instant, speed: Double, timeout: Duration) {
        self.script = script
        self.tokens = tokens
        self.begin = begin
        self.speed = speed
        self.timeout = timeout
    }

    /// The Engine.IO session is open: packets may go.
    mutating func open(at now: Instant, into actions: inout [Action]) {
        opened = true
        tick(at: now, into: &actions)
    }

    /// When the machine wants ``tick(at:into:)`` next, if ever.
    var wake: Instant? {
        guard opened, !isFinished else { return nil }
        var earliest: Instant?
        func consider(_ instant: Instant) { earliest = min(earliest ?? instant, instant) }
        if next < script.sends.count {
            if let blockedSince { consider(blockedSince + timeout) } else { consider(due(next)) }
        }
        if let first = acks.first { consider(first.sent + timeout) }
        if let settleBy { consider(settleBy) }
        return earliest
    }

    private func due(_ index: Int) -> Instant { begin + (speed == 1 ? script.sends[index].offset : script.sends[index].offset / speed) }

    /// Sends what is due, and gives up on what has waited too long.
    mutating func tick(at now: Instant, into actions: inout [Action]) {
        guard opened, !isFinished else { return }
        while next < script.sends.count, due(next) <= now {
            var packet = script.sends[next].packet
            if packet.type == .connect, let data = tokens?.connectData.first(where: { $0.index == next })?.data { packet.data = data }
            if packet.type != .connect, !joined.contains(packet.namespace) {
                let since = blockedSince ?? now
                blockedSince = since
                guard now < since + timeout else {
                    actions.append(.error(.eventTimeout))
                    finish(done: false, into: &actions)
                    return
                }
                break
            }
            if packet.type == .disconnect, answersAwaited(in: packet.namespace) {
                // The capture shows the answers before the DISCONNECT: leaving the namespace first
                // would cut them off (the server drops what it emits to a socket that left).
                // Waited for up to the timeout, then the DISCONNECT goes and they count as missing.
                let since = blockedSince ?? now
                blockedSince = since
                if now < since + timeout { break }
                for waited in waiting where waited.effect.namespace == packet.namespace { actions.append(.error(.eventTimeout)) }
                for ack in acks where ack.namespace == packet.namespace { actions.append(.error(.ackTimeout)) }
                waiting.removeAll { $0.effect.namespace == packet.namespace }
                acks.removeAll { $0.namespace == packet.namespace }
            }
            blockedSince = nil
            for effect in script.sends[next].effects { waiting.append(Waited(effect: effect, since: now)) }
            if packet.type.isEvent, packet.ackID != nil, let name = packet.eventName {
                // Ids of the user's own: a capture's may repeat across namespaces and reconnects.
                packet.ackID = nextAckID
                acks.append(PendingAck(id: nextAckID, name: name, namespace: packet.namespace, sent: now))
                nextAckID += 1
            }
            actions.append(.send(packet))
            next += 1
        }
        while let first = acks.first, first.sent + timeout <= now {
            acks.removeFirst()
            actions.append(.error(.ackTimeout))
        }
        guard next == script.sends.count, acks.isEmpty else { return }
        let settleBy = settleBy ?? now + timeout
        self.settleBy = settleBy
        if waiting.isEmpty {
            finish(done: true, into: &actions)
        } else if settleBy <= now {
            for _ in waiting { actions.append(.error(.eventTimeout)) }
            waiting = []
            finish(done: true, into: &actions)
        }
    }

    private func answersAwaited(in namespace: String) -> Bool {
        waiting.contains { $0.effect.namespace == namespace } || acks.contains { $0.namespace == namespace }
    }

    /// A Socket.IO packet from the server.
    mutating func receive(_ packet: SocketPacket, at now: Instant, into actions: inout [Action]) {
        guard !isFinished else { return }
        switch packet.type {
        case .connect:
            guard !joined.contains(packet.namespace) else { return }
            if joined.isEmpty { actions.append(.connected(now - begin)) }
            joined.append(packet.namespace)
        case .connectError:
            actions.append(.error(.refused))
            finish(done: false, into: &actions)
            return
        case .event, .binaryEvent:
            guard let name = packet.eventName else { return }
            actions.append(.received(name))
            if let index = waiting.firstIndex(where: { $0.effect.name == name && $0.effect.namespace == packet.namespace }) {
                actions.append(.event(name, now - waiting.remove(at: index).since))
            }
        case .ack, .binaryAck:
            guard let index = acks.firstIndex(where: { $0.id == packet.ackID }) else { return }
            let ack = acks.remove(at: index)
            actions.append(.ack(ack.name, now - ack.sent))
        case .disconnect:
            return
        }
        tick(at: now, into: &actions)
    }

    /// The session ended under the user: what was waited for is lost with it.
    mutating func transportEnded(into actions: inout [Action]) {
        guard !isFinished else { return }
        guard opened else {
            // Upgraded, then closed before the open packet: the session never was.
            actions.append(.error(.connectFailed))
            return finish(done: false, into: &actions)
        }
        for _ in acks { actions.append(.error(.disconnected)) }
        let outstanding = next < script.sends.count || !waiting.isEmpty
        if outstanding { actions.append(.error(.disconnected)) }
        finish(done: !outstanding && acks.isEmpty, into: &actions)
    }

    /// The run's time is up (`--duration`): the user stops where it is, nothing counted against it.
    mutating func stop(into actions: inout [Action]) {
        guard !isFinished else { return }
        finish(done: false, into: &actions)
    }

    private mutating func finish(done: Bool, into actions: inout [Action]) {
        isFinished = true
        acks = []
        waiting = []
        actions.append(.finish(wasConnected: !joined.isEmpty, done: done))
    }
}
