import SocketIOProtocol
import SocketIOTransport

/// One Engine.IO session: its transport (polling, websocket, or between the two), the packets
/// waiting for a poll, and its heartbeat.
///
/// Messages from the client come out of ``inbound`` in order; the Socket.IO layer consumes them.
/// The session ends on a close from either side, a heartbeat timeout, or a transport error; then
/// ``inbound`` finishes and ``closeReason`` says why.
actor EngineSession {
    enum Phase: Equatable {
        case open
        /// The probe came over a new WebSocket; waiting for `5`.
        case upgrading
        /// Closed by the server with packets still to flush into a poll.
        case closing
        case closed
    }

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
    nonisolated let inbound: AsyncStream<EnginePacket>
    private let inboundContinuation: AsyncStream<EnginePacket>.Continuation
    private let configuration: EngineConfiguration
    private let onEnd: @Sendable (String) -> Void

    private(set) var transport: EngineTransport
    private(set) var phase: Phase = .open
    private(set) var closeReason: String?
    private var outbox: [EnginePacket] = []
    private var heldPoll: CheckedContinuation<[EnginePacket], Never>?
    private var postInFlight = false
    private var webSocket: WebSocketConnection?
    private var upgradingSocket: WebSocketConnection?
    private var heartbeat: Task<Void, Never>?
    private var awaitingPong = false
    /// The heartbeat waiting for a pong (v4), resumed by the pong, the timeout or the close.
    private var pongWaiter: CheckedContinuation<Void, Never>?
    private var lastClientPing = ContinuousClock.now

    init(
        sid: String, version: EngineIOVersion, transport: EngineTransport, binaryPayloads: Bool, query: [(String, String)],
        headers: [(String, String)], remote: String, configuration: EngineConfiguration, onEnd: @escaping @Sendable (String) -> Void
    ) {
        self.sid = sid
        self.version = version
        self.transport = transport
        self.binaryPayloads = binaryPayloads
        self.query = query
        self.headers = headers
        self.remote = remote
        self.configuration = configuration
        self.onEnd = onEnd
        (inbound, inboundContinuation) = AsyncStream<EnginePacket>.makeStream()
    }

    var handshake: EngineHandshake {
        EngineHandshake(
            sid: sid, upgrades: transport == .polling ? ["websocket"] : [], pingInterval: configuration.pingInterval,
            pingTimeout: configuration.pingTimeout, maxPayload: version == .v4 ? configuration.maxPayload : nil
        )
    }

    func start(webSocket: WebSocketConnection?) {
        self.webSocket = webSocket
        heartbeat = Task { [weak self] in await self?.runHeartbeat() }
    }

    // MARK: Sending

    func send(_ packets: [EnginePacket]) {
        guard phase == .open || phase == .upgrading else { return }
        if transport == .websocket, let webSocket {
            for packet in packets { webSocket.send(EngineIOCodec.encode(packet, version: version, base64Binary: version == .v3 && !binaryPayloads)) }
            return
        }
        outbox += packets
        flushHeldPoll()
    }

    /// python-engineio clients refuse a payload of more than 16 packets (`max_decode_packets`);
    /// the rest waits for the next poll, which costs JS clients nothing.
    static let maxPacketsPerPoll = 16

    private func takeBatch(limit: Int = maxPacketsPerPoll) -> [EnginePacket] {
        let batch = Array(outbox.prefix(limit))
        outbox.removeFirst(batch.count)
        return batch
    }

    private func flushHeldPoll() {
        guard let held = heldPoll, !outbox.isEmpty else { return }
        heldPoll = nil
        held.resume(returning: takeBatch())
        if phase == .closing, outbox.isEmpty { finish() }
    }

    /// What was queued before the handshake response went out (it travels with the open packet).
    func takeQueued() -> PollOutcome { .packets(takeBatch(limit: Self.maxPacketsPerPoll - 1)) }

    // MARK: Polling

    func poll() async -> PollOutcome {
        switch phase {
        case .closed: return .refused(.unknownSid)
        case .closing:
            let packets = takeBatch()
            if outbox.isEmpty { finish() }
            return .packets(packets.isEmpty ? [EnginePacket(.close)] : packets)
        case .open, .upgrading: break
        }
        guard transport == .polling else { return .refused(.badRequest) }
        if heldPoll != nil {
            // Two GETs at once: the JS server refuses the second and closes the session.
            close(reason: "multiple poll requests", notifyClient: true)
            return .refused(.badRequest)
        }
        if !outbox.isEmpty { return .packets(takeBatch()) }
        if phase == .upgrading { return .packets([EnginePacket(.noop)]) }
        return .packets(await withCheckedContinuation { heldPoll = $0 })
    }

    /// A POST body: returns nil when accepted, or why it was refused.
    func post(_ body: [UInt8]) -> EngineErrorCode? {
        guard phase == .open || phase == .upgrading else { return .unknownSid }
        guard transport == .polling else { return .badRequest }
        guard !postInFlight else {
            close(reason: "multiple post requests", notifyClient: true)
            return .badRequest
        }
        postInFlight = true
        defer { postInFlight = false }
        do {
            for packet in try EngineIOCodec.decodePayload(body, version: version) {
                receive(packet)
                if phase == .closed { break }
            }
            return nil
        } catch {
            close(reason: "parse error", notifyClient: false)
            return .badRequest
        }
    }

    // MARK: WebSocket

    /// Runs a WebSocket for this session: the whole session when it started on one, or an
    /// upgrade from polling.
    func attach(_ socket: WebSocketConnection, upgrading: Bool) async {
        if upgrading {
            guard phase == .open, transport == .polling, upgradingSocket == nil else {
                socket.close()
                return
            }
            upgradingSocket = socket
        }
        let timeout = upgrading ? Task { [weak self, configuration] in
            try? await Task.sleep(for: .milliseconds(configuration.upgradeTimeout))
            await self?.abortUpgrade(socket)
        } : nil
        for await message in socket.messages {
            let packet: EnginePacket
            do { packet = try EngineIOCodec.decode(message, version: version) } catch {
                close(reason: "parse error", notifyClient: false)
                break
            }
            if upgradingSocket === socket {
                handleUpgrade(packet, socket: socket)
            } else if webSocket === socket {
                receive(packet)
            } else {
                break
            }
            if phase == .closed { break }
        }
        timeout?.cancel()
        if upgradingSocket === socket { abortUpgrade(socket) }
        if webSocket === socket, phase != .closed { close(reason: "transport close", notifyClient: false) }
    }

    private func handleUpgrade(_ packet: EnginePacket, socket: WebSocketConnection) {
        switch (packet.type, packet.text) {
        case (.ping, "probe"):
            socket.send(EngineIOCodec.encode(EnginePacket(.pong, .text("probe")), version: version))
            phase = .upgrading
            // Release the pending poll so the client can pause polling (the JS server's noop).
            if let held = heldPoll {
                heldPoll = nil
                held.resume(returning: [EnginePacket(.noop)])
            }
        case (.upgrade, _) where phase == .upgrading:
            upgradingSocket = nil
            webSocket = socket
            transport = .websocket
            phase = .open
            if let held = heldPoll {
                heldPoll = nil
                held.resume(returning: [EnginePacket(.noop)])
            }
            let pending = outbox
            outbox = []
            send(pending)
        default:
            abortUpgrade(socket)
        }
    }

    private func abortUpgrade(_ socket: WebSocketConnection) {
        guard upgradingSocket === socket else { return }
        upgradingSocket = nil
        if phase == .upgrading { phase = .open }
        socket.close()
    }

    // MARK: Packets from the client

    private func receive(_ packet: EnginePacket) {
        switch packet.type {
        case .message:
            inboundContinuation.yield(packet)
        case .ping where version == .v3:
            lastClientPing = .now
            send([EnginePacket(.pong, packet.payload)])
        case .pong where version == .v4:
            awaitingPong = false
            wakeHeartbeat()
        case .ping, .pong:
            close(reason: "invalid heartbeat direction", notifyClient: false)
        case .close:
            close(reason: "transport close", notifyClient: false, byClient: true)
        case .open, .upgrade, .noop:
            break
        }
    }

    // MARK: Heartbeat

    private func runHeartbeat() async {
        let interval = Duration.milliseconds(configuration.pingInterval)
        let timeout = Duration.milliseconds(configuration.pingTimeout)
        while !Task.isCancelled, phase == .open || phase == .upgrading {
            switch version {
            case .v4:
                try? await Task.sleep(for: interval)
                guard !Task.isCancelled, phase == .open || phase == .upgrading else { return }
                awaitingPong = true
                send([EnginePacket(.ping)])
                // The next ping is due an interval after the pong, as in the JS server.
                let expiry = Task { [weak self] in
                    try? await Task.sleep(for: timeout)
                    await self?.wakeHeartbeat()
                }
                await withCheckedContinuation { pongWaiter = $0 }
                expiry.cancel()
                guard !Task.isCancelled, phase == .open || phase == .upgrading else { return }
                if awaitingPong {
                    close(reason: "ping timeout", notifyClient: false)
                    return
                }
            case .v3:
                let deadline = lastClientPing + interval + timeout
                try? await Task.sleep(until: deadline, clock: .continuous)
                guard !Task.isCancelled else { return }
                if ContinuousClock.now >= lastClientPing + interval + timeout {
                    close(reason: "ping timeout", notifyClient: false)
                    return
                }
            }
        }
    }

    private func wakeHeartbeat() {
        pongWaiter?.resume()
        pongWaiter = nil
    }

    // MARK: Closing

    /// Ends the session. `notifyClient`: send a close packet (polling) or close the WebSocket.
    func close(reason: String, notifyClient: Bool = true, byClient: Bool = false) {
        guard phase != .closed, phase != .closing else { return }
        closeReason = reason
        heartbeat?.cancel()
        wakeHeartbeat()
        inboundContinuation.finish()
        upgradingSocket?.close()
        upgradingSocket = nil
        if transport == .websocket {
            webSocket?.close()
            finish()
            return
        }
        if let held = heldPoll {
            heldPoll = nil
            // A client's own close releases its poll with a noop; the server's with a close.
            held.resume(returning: [EnginePacket(byClient ? .noop : .close)])
            finish()
        } else if notifyClient {
            outbox.append(EnginePacket(.close))
            phase = .closing
            // Nobody may come for the close packet: give up after a ping timeout.
            Task { [weak self, configuration] in
                try? await Task.sleep(for: .milliseconds(configuration.pingTimeout))
                await self?.finish()
            }
        } else {
            finish()
        }
    }

    private func finish() {
        guard phase != .closed else { return }
        phase = .closed
        heartbeat?.cancel()
        inboundContinuation.finish()
        onEnd(sid)
    }
}
