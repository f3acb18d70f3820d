import SocketIOProtocol

/// The Engine.IO protocol of one server-side session, as a value: each input (a send, a poll, a
/// POST body, a WebSocket event, a timer) changes the state and returns what to do. No I/O, no
/// clock, no tasks: ``EngineSession`` carries the actions out, and the tests drive this directly.
///
/// WebSockets are named by a ``SocketID`` the driver chooses; timers are scheduled by action and
/// come back as ``Timer`` inputs, stale ones (a pong came, the upgrade finished) being ignored.
struct EngineSessionStateMachine {
    typealias SocketID = Int

    enum State: Equatable {
        /// Long-polling: packets wait in `outbox` for a poll; `pollHeld` while a GET waits for them;
        /// `upgrade` while a WebSocket is being probed to take over.
        case polling(Polling)
        case webSocket(SocketID)
        /// Closed by the server with packets (the close packet last) still to be taken by a poll.
        case closing(outbox: [EnginePacket], reason: EngineCloseReason)
        case closed(EngineCloseReason)
    }

    struct Polling: Equatable {
        var outbox: [EnginePacket] = []
        var pollHeld = false
        var upgrade: Upgrade?
    }

    struct Upgrade: Equatable {
        var socket: SocketID
        /// The probe was answered: a GET held is released with a noop every 100 ms (engine.io's
        /// check interval) until the `upgrade` packet.
        var probed = false
    }

    enum Timer: Hashable, Sendable {
        /// v4: time to ping the client.
        case ping(generation: Int)
        /// v4: the pong to the ping of that generation is late.
        case pongTimeout(generation: Int)
        /// v3: the client's ping of that generation has had no successor in time.
        case clientPingTimeout(generation: Int)
        case upgradeTimeout(SocketID)
        /// While a probed upgrade waits for its `upgrade` packet: release a held GET with a noop.
        case upgradeCheck(SocketID)
        /// Nobody came to poll for the close packet.
        case closingTimeout
    }

    enum Action: Equatable {
        /// A `message` packet for the Socket.IO layer.
        case deliver(EnginePacket)
        case writeWebSocket(SocketID, [EnginePacket])
        /// Answers the GET that was told to wait.
        case answerPoll([EnginePacket])
        case closeWebSocket(SocketID)
        case schedule(Timer, afterMilliseconds: Int)
        /// No more messages will be delivered; the session may still flush a close packet.
        case endInbound(EngineCloseReason)
        /// The session is over: forget it.
        case finish(EngineCloseReason)
    }

    /// What to do with a GET.
    enum PollDecision: Equatable {
        case answer([EnginePacket])
        case refuse(EngineErrorCode)
        /// Hold the request; an ``Action/answerPoll(_:)`` will answer it.
        case wait
    }

    /// python-engineio clients refuse a payload of more than 16 packets (`max_decode_packets`);
    /// the rest waits for the next poll, which costs JS clients nothing.
    static let maxPacketsPerPoll = 16

    let version: EngineIOVersion
    let pingInterval: Int
    let pingTimeout: Int
    let upgradeTimeout: Int
    private(set) var state: State
    /// Heartbeat generation: a pong (v4) or a client ping (v3) starts a new one.
    private var heartbeat = 0
    private var awaitingPong = false

    init(version: EngineIOVersion, startingOn webSocket: SocketID?, configuration: EngineConfiguration) {
        self.version = version
        pingInterval = configuration.pingInterval
        pingTimeout = configuration.pingTimeout
        upgradeTimeout = configuration.upgradeTimeout
        state = webSocket.map(State.webSocket) ?? .polling(Polling())
    }

    var transport: EngineTransport {
        if case .webSocket = state { .websocket } else { .polling }
    }

    var isClosed: Bool {
        if case .closed = state { true } else { false }
    }

    /// Open for traffic (not closing or closed).
    var isOpen: Bool {
        switch state {
        case .polling, .webSocket: true
        case .closing, .closed: false
        }
    }

    /// Whether messages from `socket` still belong to this session.
    func owns(_ socket: SocketID) -> Bool {
        switch state {
        case .webSocket(let current): current == socket
        case .polling(let polling): polling.upgrade?.socket == socket
        case .closing, .closed: false
        }
    }

    // MARK: Inputs

    /// The heartbeat's first timer.
    mutating func start() -> [Action] {
        switch version {
        case .v4: [.schedule(.ping(generation: heartbeat), afterMilliseconds: pingInterval)]
        case .v3: [.schedule(.clientPingTimeout(generation: heartbeat), afterMilliseconds: pingInterval + pingTimeout)]
        }
    }

    /// Packets for the client, over whichever transport is current.
    mutating func send(_ packets: [EnginePacket]) -> [Action] {
        switch state {
        case .webSocket(let socket):
            return [.writeWebSocket(socket, packets)]
        case .polling(var polling):
            polling.outbox += packets
            var actions: [Action] = []
            if polling.pollHeld, !polling.outbox.isEmpty {
                polling.pollHeld = false
                actions.append(.answerPoll(Self.takeBatch(&polling.outbox)))
            }
            state = .polling(polling)
            return actions
        case .closing, .closed:
            return []
        }
    }

    /// What went out with the open packet of a polling handshake (socket.io 2.x queues `40`).
    mutating func takeQueued() -> [EnginePacket] {
        guard case .polling(var polling) = state else { return [] }
        let batch = Self.takeBatch(&polling.outbox, limit: Self.maxPacketsPerPoll - 1)
        state = .polling(polling)
        return batch
    }

    /// A long-poll GET.
    mutating func poll() -> (PollDecision, [Action]) {
        switch state {
        case .closed:
            return (.refuse(.unknownSid), [])
        case .closing(var outbox, let reason):
            let batch = Self.takeBatch(&outbox)
            guard outbox.isEmpty else {
                state = .closing(outbox: outbox, reason: reason)
                return (.answer(batch), [])
            }
            state = .closed(reason)
            return (.answer(batch.isEmpty ? [EnginePacket(.close)] : batch), [.finish(reason)])
        case .webSocket:
            return (.refuse(.badRequest), [])
        case .polling(var polling):
            if polling.pollHeld {
                // Two GETs at once: the JS server refuses the second and closes the session.
                return (.refuse(.badRequest), close(.multiplePollRequests, notifyClient: true))
            }
            if !polling.outbox.isEmpty {
                let batch = Self.takeBatch(&polling.outbox)
                state = .polling(polling)
                return (.answer(batch), [])
            }
            polling.pollHeld = true
            state = .polling(polling)
            return (.wait, [])
        }
    }

    /// A POST's payload, decoded (or why it did not decode). Returns the refusal, if any.
    mutating func post(_ payload: Result<[EnginePacket], EngineIOError>) -> (EngineErrorCode?, [Action]) {
        switch state {
        case .closing, .closed: return (.unknownSid, [])
        case .webSocket: return (.badRequest, [])
        case .polling: break
        }
        switch payload {
        case .failure:
            return (.badRequest, close(.parseError, notifyClient: false))
        case .success(let packets):
            var actions: [Action] = []
            for packet in packets {
                actions += receive(packet)
                if !isOpen { break }
            }
            return (nil, actions)
        }
    }

    /// A WebSocket asks to take over this polling session (it has not probed yet).
    mutating func upgradeRequested(on socket: SocketID) -> [Action] {
        guard case .polling(var polling) = state, polling.upgrade == nil else { return [.closeWebSocket(socket)] }
        polling.upgrade = Upgrade(socket: socket)
        state = .polling(polling)
        return [.schedule(.upgradeTimeout(socket), afterMilliseconds: upgradeTimeout)]
    }

    /// A packet from a WebSocket (or why its message did not decode).
    mutating func received(_ packet: Result<EnginePacket, EngineIOError>, on socket: SocketID) -> [Action] {
        guard owns(socket) else { return [] }
        guard case .success(let packet) = packet else { return close(.parseError, notifyClient: false) }
        if case .polling(let polling) = state, let upgrade = polling.upgrade, upgrade.socket == socket {
            return upgradeStep(packet, polling: polling)
        }
        return receive(packet)
    }

    /// A WebSocket ended (closed by the client, or failed).
    mutating func webSocketEnded(_ socket: SocketID) -> [Action] {
        switch state {
        case .polling(let polling) where polling.upgrade?.socket == socket:
            return abortUpgrade(polling)
        case .webSocket(let current) where current == socket:
            return close(.transportClose, notifyClient: false)
        default:
            return []
        }
    }

    mutating func timerFired(_ timer: Timer) -> [Action] {
        switch timer {
        case .ping(let generation):
            guard generation == heartbeat, isOpen else { return [] }
            awaitingPong = true
            return send([EnginePacket(.ping)]) + [.schedule(.pongTimeout(generation: generation), afterMilliseconds: pingTimeout)]
        case .pongTimeout(let generation), .clientPingTimeout(let generation):
            guard generation == heartbeat, isOpen else { return [] }
            if case .pongTimeout = timer, !awaitingPong { return [] }
            return close(.pingTimeout, notifyClient: false)
        case .upgradeTimeout(let socket):
            guard case .polling(let polling) = state, polling.upgrade?.socket == socket else { return [] }
            return abortUpgrade(polling)
        case .upgradeCheck(let socket):
            guard case .polling(var polling) = state, polling.upgrade?.socket == socket, polling.upgrade?.probed == true else { return [] }
            var actions: [Action] = [.schedule(.upgradeCheck(socket), afterMilliseconds: Self.upgradeCheckInterval)]
            if polling.pollHeld {
                polling.pollHeld = false
                state = .polling(polling)
                actions.insert(.answerPoll([EnginePacket(.noop)]), at: 0)
            }
            return actions
        case .closingTimeout:
            guard case .closing(_, let reason) = state else { return [] }
            state = .closed(reason)
            return [.finish(reason)]
        }
    }

    /// Ends the session. `notifyClient`: a polling client gets a close packet on its next poll
    /// (a WebSocket is closed either way). `byClient`: the client's own close packet.
    mutating func close(_ reason: EngineCloseReason, notifyClient: Bool, byClient: Bool = false) -> [Action] {
        switch state {
        case .closing, .closed:
            return []
        case .webSocket(let socket):
            state = .closed(reason)
            return [.closeWebSocket(socket), .finish(reason)]
        case .polling(var polling):
            var actions: [Action] = []
            if let upgrade = polling.upgrade { actions.append(.closeWebSocket(upgrade.socket)) }
            if polling.pollHeld {
                // A client's own close releases its poll with a noop; the server's with a close.
                state = .closed(reason)
                return actions + [.answerPoll([EnginePacket(byClient ? .noop : .close)]), .finish(reason)]
            }
            guard notifyClient else {
                state = .closed(reason)
                return actions + [.finish(reason)]
            }
            polling.outbox.append(EnginePacket(.close))
            state = .closing(outbox: polling.outbox, reason: reason)
            // Nobody may come for the close packet: give up after a ping timeout.
            return actions + [.endInbound(reason), .schedule(.closingTimeout, afterMilliseconds: pingTimeout)]
        }
    }

    // MARK: Internals

    private mutating func receive(_ packet: EnginePacket) -> [Action] {
        switch (packet.type, version) {
        case (.message, _):
            return [.deliver(packet)]
        case (.ping, .v3):
            heartbeat += 1
            return [.schedule(.clientPingTimeout(generation: heartbeat), afterMilliseconds: pingInterval + pingTimeout)]
                + send([EnginePacket(.pong, packet.payload)])
        case (.pong, .v4):
            // The next ping is due an interval after the pong, as in the JS server.
            awaitingPong = false
            heartbeat += 1
            return [.schedule(.ping(generation: heartbeat), afterMilliseconds: pingInterval)]
        case (.ping, _), (.pong, _):
            return close(.invalidHeartbeatDirection, notifyClient: false)
        case (.close, _):
            return close(.transportClose, notifyClient: false, byClient: true)
        case (.open, _), (.upgrade, _), (.noop, _):
            return []
        }
    }

    private mutating func upgradeStep(_ packet: EnginePacket, polling: Polling) -> [Action] {
        guard let upgrade = polling.upgrade else { return [] }
        var polling = polling
        switch (packet.type, packet.text) {
        case (.ping, "probe"):
            polling.upgrade?.probed = true
            state = .polling(polling)
            // As engine.io does: a GET held now or later is released with a noop at the next
            // 100 ms check, so the client can pause polling and send `upgrade`.
            return [
                .writeWebSocket(upgrade.socket, [EnginePacket(.pong, .text("probe"))]),
                .schedule(.upgradeCheck(upgrade.socket), afterMilliseconds: Self.upgradeCheckInterval),
            ]
        case (.upgrade, _) where upgrade.probed:
            var actions: [Action] = []
            // As engine.io closes the polling transport: a GET still out gets a close packet (for
            // that transport; the session goes on over the WebSocket).
            if polling.pollHeld { actions.append(.answerPoll([EnginePacket(.close)])) }
            state = .webSocket(upgrade.socket)
            if !polling.outbox.isEmpty { actions.append(.writeWebSocket(upgrade.socket, polling.outbox)) }
            return actions
        default:
            return abortUpgrade(polling)
        }
    }

    /// engine.io's check interval while an upgrade waits for its `upgrade` packet.
    static let upgradeCheckInterval = 100

    private mutating func abortUpgrade(_ polling: Polling) -> [Action] {
        guard let upgrade = polling.upgrade else { return [] }
        var polling = polling
        polling.upgrade = nil
        state = .polling(polling)
        return [.closeWebSocket(upgrade.socket)]
    }

    private static func takeBatch(_ outbox: inout [EnginePacket], limit: Int = maxPacketsPerPoll) -> [EnginePacket] {
        let batch = Array(outbox.prefix(limit))
        outbox.removeFirst(batch.count)
        return batch
    }
}
