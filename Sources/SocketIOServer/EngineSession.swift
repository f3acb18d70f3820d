import SocketIOProtocol
import SocketIOTransport

/// One Engine.IO session at work: carries out what its ``EngineSessionStateMachine`` decides
/// (writes to WebSockets, answers held polls, timers, the end) and feeds it what happens. All the
/// protocol's decisions are the state machine's; this actor only owns the I/O.
///
/// Messages from the client come out of ``inbound`` in order; the Socket.IO layer consumes them.
/// When the session ends, ``inbound`` finishes and ``closeReason`` says why.
actor EngineSession {
    typealias SocketID = EngineSessionStateMachine.SocketID

    enum PollOutcome {
        case packets([EnginePacket])
        case refused(EngineErrorCode)
    }

    nonisolated let sid: String
    nonisolated let version: EngineIOVersion
    /// v3: the client can take XHR2 binary payloads (it did not ask for `b64`).
    nonisolated let binaryPayloads: Bool
    /// The first request's query, for the Socket.IO handshake.
    nonisolated let query: [(String, String)]
    nonisolated let headers: [(String, String)]
    nonisolated let remote: String
    nonisolated let handshake: EngineHandshake
    nonisolated let inbound: AsyncStream<EnginePacket>
    private let inboundContinuation: AsyncStream<EnginePacket>.Continuation
    private let onEnd: @Sendable (String) -> Void

    private var machine: EngineSessionStateMachine
    private(set) var closeReason: EngineCloseReason?
    private var sockets: [SocketID: WebSocketConnection] = [:]
    private var nextSocket: SocketID = 1
    /// The GET the state machine told to wait.
    private var heldPoll: CheckedContinuation<[EnginePacket], Never>?
    /// One pending task per kind of timer: a new one replaces the last.
    private var timers: [TimerSlot: Task<Void, Never>] = [:]
    private var ended = false

    /// The socket of a session that started on a WebSocket.
    private static let firstSocket: SocketID = 0

    init(
        sid: String, version: EngineIOVersion, transport: EngineTransport, binaryPayloads: Bool, query: [(String, String)],
        headers: [(String, String)], remote: String, configuration: EngineConfiguration, onEnd: @escaping @Sendable (String) -> Void
    ) {
        self.sid = sid
        self.version = version
        self.binaryPayloads = binaryPayloads
        self.query = query
        self.headers = headers
        self.remote = remote
        self.onEnd = onEnd
        machine = EngineSessionStateMachine(
            version: version, startingOn: transport == .websocket ? Self.firstSocket : nil, configuration: configuration
        )
        handshake = EngineHandshake(
            sid: sid, upgrades: transport == .polling ? ["websocket"] : [], pingInterval: configuration.pingInterval,
            pingTimeout: configuration.pingTimeout, maxPayload: version == .v4 ? configuration.maxPayload : nil
        )
        (inbound, inboundContinuation) = AsyncStream<EnginePacket>.makeStream()
    }

    var transport: EngineTransport { machine.transport }

    /// Starts the heartbeat; `webSocket` is the session's socket when it started on one.
    func start(webSocket: WebSocketConnection?) {
        if let webSocket { sockets[Self.firstSocket] = webSocket }
        perform(machine.start())
    }

    func send(_ packets: [EnginePacket]) { perform(machine.send(packets)) }

    /// What was queued before the handshake response went out (it travels with the open packet).
    func takeQueued() -> PollOutcome { .packets(machine.takeQueued()) }

    func poll() async -> PollOutcome {
        let (decision, actions) = machine.poll()
        perform(actions)
        switch decision {
        case .answer(let packets): return .packets(packets)
        case .refuse(let code): return .refused(code)
        case .wait: return .packets(await withCheckedContinuation { heldPoll = $0 })
        }
    }

    /// A POST body: returns nil when accepted, or why it was refused.
    func post(_ body: [UInt8]) -> EngineErrorCode? {
        let payload: Result<[EnginePacket], EngineIOError>
        do { payload = .success(try EngineIOCodec.decodePayload(body, version: version)) } catch { payload = .failure(error) }
        let (refusal, actions) = machine.post(payload)
        perform(actions)
        return refusal
    }

    /// Runs a WebSocket for this session until it ends or no longer belongs to it: the session's
    /// own socket when it started on one, or one that asks to take over a polling session.
    func attach(_ socket: WebSocketConnection, upgrading: Bool) async {
        let id: SocketID
        if upgrading {
            id = nextSocket
            nextSocket += 1
            sockets[id] = socket
            perform(machine.upgradeRequested(on: id))
        } else {
            id = Self.firstSocket
        }
        if machine.owns(id) {
            for await message in socket.messages {
                let packet: Result<EnginePacket, EngineIOError>
                do { packet = .success(try EngineIOCodec.decode(message, version: version)) } catch { packet = .failure(error) }
                perform(machine.received(packet, on: id))
                if !machine.owns(id) { break }
            }
            perform(machine.webSocketEnded(id))
        }
        sockets[id] = nil
    }

    /// Ends the session. `notifyClient`: a polling client gets a close packet on its next poll.
    func close(_ reason: EngineCloseReason, notifyClient: Bool = true) {
        perform(machine.close(reason, notifyClient: notifyClient))
    }

    // MARK: Carrying out

    private func perform(_ actions: [EngineSessionStateMachine.Action]) {
        for action in actions {
            switch action {
            case .deliver(let packet):
                inboundContinuation.yield(packet)
            case .writeWebSocket(let id, let packets):
                guard let socket = sockets[id] else { continue }
                for packet in packets {
                    socket.send(EngineIOCodec.encode(packet, version: version, base64Binary: version == .v3 && !binaryPayloads))
                }
            case .answerPoll(let packets):
                heldPoll?.resume(returning: packets)
                heldPoll = nil
            case .closeWebSocket(let id):
                sockets[id]?.close()
            case .schedule(let timer, let milliseconds):
                schedule(timer, after: milliseconds)
            case .endInbound(let reason):
                if closeReason == nil { closeReason = reason }
                inboundContinuation.finish()
            case .finish(let reason):
                if closeReason == nil { closeReason = reason }
                inboundContinuation.finish()
                guard !ended else { continue }
                ended = true
                for timer in timers.values { timer.cancel() }
                timers = [:]
                onEnd(sid)
            }
        }
    }

    private enum TimerSlot: Hashable {
        case ping, pongTimeout, clientPingTimeout, upgradeTimeout, upgradeCheck, closingTimeout
    }

    private func schedule(_ timer: EngineSessionStateMachine.Timer, after milliseconds: Int) {
        guard !ended else { return }
        let slot: TimerSlot = switch timer {
        case .ping: .ping
        case .pongTimeout: .pongTimeout
        case .clientPingTimeout: .clientPingTimeout
        case .upgradeTimeout: .upgradeTimeout
        case .upgradeCheck: .upgradeCheck
        case .closingTimeout: .closingTimeout
        }
        timers[slot]?.cancel()
        timers[slot] = Task { [weak self] in
            try? await Task.sleep(for: .milliseconds(milliseconds))
            guard !Task.isCancelled else { return }
            await self?.fire(timer)
        }
    }

    private func fire(_ timer: EngineSessionStateMachine.Timer) {
        perform(machine.timerFired(timer))
    }
}
