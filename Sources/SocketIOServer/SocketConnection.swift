import Logging
import SocketIOProtocol
import Synchronization

/// The Socket.IO side of one Engine.IO session: decodes its messages, connects namespaces
/// (running middleware), dispatches events and acks, and encodes what the server sends.
///
/// Packets are handled one at a time, in order, and a handler's replies are queued before the
/// next packet is handled, so a client waiting for a reply sees a deterministic order. Acks
/// skip that queue: a handler awaiting `emitWithAck` gets its answer while it runs.
actor SocketConnection {
    private let session: EngineSession
    /// Strong: a connection still reading when its server is shut down and released (a `serve`
    /// stopped under load) must not find it gone; the connection ends with its session, and
    /// lets the server go then.
    private let server: SocketIOServer
    private let protocolVersion: SocketIOVersion
    private var codec: SocketIOPacketCodec
    private var sockets: [String: Socket] = [:]
    private var nextAckID: UInt64 = 0
    private var pendingAcks: [UInt64: CheckedContinuation<[JSONValue], any Error>] = [:]
    private var connectTimer: Task<Void, Never>?
    private static let order = Mutex<UInt64>(0)

    init(session: EngineSession, server: SocketIOServer) {
        self.session = session
        self.server = server
        protocolVersion = SocketIOVersion(engine: session.version)
        codec = SocketIOPacketCodec(parser: server.configuration.parser, version: protocolVersion)
    }

    /// Protocol v4 connects `/` implicitly; v5 waits for the client's CONNECT, up to connectTimeout.
    func open() async {
        if protocolVersion == .v4 {
            await connect(namespace: "/", auth: nil, query: nil)
        } else {
            let timeout = server.configuration.engine.connectTimeout
            connectTimer = Task { [weak self] in
                try? await Task.sleep(for: .milliseconds(timeout))
                guard !Task.isCancelled else { return }
                await self?.close(reason: "connect timeout")
            }
        }
    }

    func run() async {
        let (queue, enqueue) = AsyncStream<SocketPacket>.makeStream()
        let handling = Task {
            for await packet in queue { await handle(packet) }
        }
        for await message in session.inbound {
            let packet: SocketPacket?
            do {
                packet = try codec.decode(message.payload)
            } catch {
                server.logger.debug("closing on a bad packet", metadata: ["sid": "\(session.sid)", "error": "\(error)"])
                await close(reason: "parse error")
                break
            }
            guard let packet else { continue }
            if packet.type.isAck {
                resolveAck(packet)
            } else {
                enqueue.yield(packet)
            }
        }
        enqueue.finish()
        await handling.value
        connectTimer?.cancel()
        let reason = await session.closeReason?.description ?? "transport close"
        if RecoveryStore.recoverableReasons.contains(reason) {
            // Kept for a client that comes back in time (connection-state recovery).
            for socket in sockets.values {
                if let recovery = socket.namespace.recovery, let kept = socket.session(at: RecoveryStore.now) { recovery.persist(kept) }
            }
        }
        for socket in sockets.values { await socket.markDisconnected(reason: reason) }
        sockets = [:]
        for (_, pending) in pendingAcks { pending.resume(throwing: AckTimeout()) }
        pendingAcks = [:]
    }

    private func handle(_ packet: SocketPacket) async {
        switch packet.type {
        case .connect:
            if sockets[packet.namespace] != nil {
                await close(reason: "second CONNECT for \(packet.namespace)")
                return
            }
            await connect(namespace: packet.namespace, auth: packet.data, query: packet.query)
        case .disconnect:
            if let socket = sockets[packet.namespace] {
                await disconnect(socket, reason: "client namespace disconnect", notifyClient: false)
            }
        case .event, .binaryEvent:
            guard let socket = sockets[packet.namespace] else { return await close(reason: "event for an unconnected namespace") }
            guard let name = packet.eventName else { return }
            var ack: Acknowledgement?
            if let id = packet.ackID {
                let namespace = packet.namespace
                let answered = Mutex(false)
                ack = Acknowledgement { [weak self] arguments in
                    // Answered at most once, like socket.io.
                    guard answered.withLock({ let first = !$0; $0 = true; return first }) else { return }
                    await self?.send(SocketPacket(.ack, namespace: namespace, ackID: id, data: .array(arguments)))
                }
            }
            await socket.handle(event: name, arguments: packet.arguments, ack: ack)
        case .ack, .binaryAck:
            resolveAck(packet)
        case .connectError:
            await close(reason: "CONNECT_ERROR from a client")
        }
    }

    private func resolveAck(_ packet: SocketPacket) {
        guard sockets[packet.namespace] != nil else {
            Task { await close(reason: "ack for an unconnected namespace") }
            return
        }
        if let id = packet.ackID, let pending = pendingAcks.removeValue(forKey: id) {
            pending.resume(returning: packet.arguments)
        }
    }

    private func connect(namespace name: String, auth: JSONValue?, query: String?) async {
        guard let namespace = server.existingNamespace(name) else {
            await send(connectError(name, message: "Invalid namespace", data: nil))
            return
        }
        connectTimer?.cancel()
        let engineQuery = session.query.map { (name: $0.0, value: $0.1) }
        var handshakeAuth = auth ?? .object([:])
        if protocolVersion == .v4 {
            // socket.io 3+ in allowEIO3 mode turns the v4 query into `auth`; so do we.
            let pairs = query.map { QueryString.pairs($0) } ?? []
            handshakeAuth = .object(JSONObject(pairs.map { .init(key: JSONString($0.0), value: .string($0.1)) }))
        }
        let handshake = Socket.Handshake(
            auth: handshakeAuth, query: engineQuery, headers: session.headers.map { (name: $0.0, value: $0.1) },
            address: session.remote, engineVersion: session.version
        )
        let order = Self.order.withLock { value in
            value += 1
            return value
        }
        // A client back with its pid and last offset gets its socket again, middlewares skipped
        // (socket.io's default), and what it missed.
        let recovery = protocolVersion == .v5 ? namespace.recovery : nil
        var restored: RecoveryStore.Restored?
        if let recovery, let pid = auth?["pid"]?.stringValue, let offset = auth?["offset"]?.stringValue {
            restored = recovery.restore(pid: pid, offset: offset, now: RecoveryStore.now)
        }
        let id = restored?.session.sid ?? (protocolVersion == .v4 ? (name == "/" ? session.sid : "\(name)#\(session.sid)") : SessionID.make())
        let pid = recovery == nil ? nil : restored?.session.pid ?? SessionID.make()
        let socket = Socket(id: id, namespace: namespace, handshake: handshake, connection: self, order: order, pid: pid, recovered: restored?.session)
        if restored == nil {
            do {
                try await namespace.runMiddlewares(socket)
            } catch let refused as ConnectionRefused {
                await send(connectError(name, message: refused.message, data: refused.data))
                return
            } catch {
                await send(connectError(name, message: "\(error)", data: nil))
                return
            }
        }
        sockets[name] = socket
        var reply: JSONValue?
        if protocolVersion == .v5 {
            reply = pid.map { .object(["sid": .string(id), "pid": .string($0)]) } ?? .object(["sid": .string(id)])
        }
        await send(SocketPacket(.connect, namespace: name, data: reply))
        for missed in restored?.missed ?? [] { await send(SocketPacket(.event, namespace: name, data: .array(missed))) }
        await namespace.connected(socket)
    }

    private func connectError(_ namespace: String, message: String, data: JSONValue?) -> SocketPacket {
        let payload: JSONValue
        if protocolVersion == .v5 || data != nil {
            var members: [JSONObject.Member] = [.init(key: JSONString("message"), value: .string(message))]
            if let data { members.append(.init(key: JSONString("data"), value: data)) }
            payload = .object(JSONObject(members))
        } else {
            payload = .string(message)
        }
        return SocketPacket(.connectError, namespace: namespace, data: payload)
    }

    func disconnect(_ socket: Socket, reason: String, notifyClient: Bool) async {
        guard sockets[socket.namespace.name] === socket else { return }
        sockets[socket.namespace.name] = nil
        if notifyClient { await send(SocketPacket(.disconnect, namespace: socket.namespace.name)) }
        await socket.markDisconnected(reason: reason)
    }

    func send(_ packet: SocketPacket) async {
        await session.send(codec.encode(packet))
    }

    func emitWithAck(_ event: String, _ arguments: [JSONValue], namespace: String, timeout: Int) async throws -> [JSONValue] {
        let id = nextAckID
        nextAckID += 1
        let timer = Task { [weak self] in
            try? await Task.sleep(for: .milliseconds(timeout))
            guard !Task.isCancelled else { return }
            await self?.expireAck(id)
        }
        defer { timer.cancel() }
        return try await withCheckedThrowingContinuation { continuation in
            pendingAcks[id] = continuation
            Task { await self.send(SocketPacket.event(event, arguments, namespace: namespace, ackID: id)) }
        }
    }

    private func expireAck(_ id: UInt64) {
        pendingAcks.removeValue(forKey: id)?.resume(throwing: AckTimeout())
    }

    func close(reason: String) async {
        await session.close(.application(reason))
    }
}
