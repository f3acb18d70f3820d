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
    /// Why the Socket.IO layer ends a session, worded as socket.io's server words it.
    enum CloseReason: Sendable, Hashable, CustomStringConvertible {
        /// A v5 client that sent no CONNECT within connectTimeout.
        case connectTimeout
        case parseError
        case secondConnect(namespace: String)
        case eventForUnconnectedNamespace
        case ackForUnconnectedNamespace
        case connectErrorFromClient
        /// `socket.disconnect(true)`.
        case forcedServerClose

        var description: String {
            switch self {
            case .connectTimeout: "connect timeout"
            case .parseError: "parse error"
            case .secondConnect(let namespace): "second CONNECT for \(namespace)"
            case .eventForUnconnectedNamespace: "event for an unconnected namespace"
            case .ackForUnconnectedNamespace: "ack for an unconnected namespace"
            case .connectErrorFromClient: "CONNECT_ERROR from a client"
            case .forcedServerClose: "forced server close"
            }
        }
    }

    private let session: EngineSession
    /// Strong: a connection still reading when its server is shut down and released (a `serve`
    /// stopped under load) must not find it gone; the connection ends with its session, and
    /// lets the server go then.
    private let server: SocketIOServer
    private let protocolVersion: SocketIOVersion
    private var codec: SocketIOPacketCodec
    private var sockets: [String: Socket] = [:]
    private var acks = AckSlots<CheckedContinuation<[JSONValue]?, Never>>()
    /// Whether a v5 client's first CONNECT is still awaited (connectTimeout runs).
    private var awaitingConnect = false
    private static let order = Mutex<UInt64>(0)

    init(session: EngineSession, server: SocketIOServer) {
        self.session = session
        self.server = server
        protocolVersion = SocketIOVersion(engine: session.version)
        codec = SocketIOPacketCodec(parser: server.configuration.parser, version: protocolVersion)
    }

    /// Protocol v4 connects `/` implicitly; v5 waits for the client's CONNECT, up to connectTimeout
    /// (timed in ``run()``).
    func open() async {
        if protocolVersion == .v4 {
            await connect(namespace: "/", auth: nil, query: nil)
        } else {
            awaitingConnect = true
        }
    }

    /// Reads the session's messages until it ends. Packets are handled in order by one child
    /// task, which handles every packet read before the end (acks go straight to their waiter);
    /// v5's connect timeout is another child, cancelled when the reading ends.
    func run() async {
        let (queue, enqueue) = AsyncStream<SocketPacket>.makeStream()
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await packet in queue { await self.handle(packet) }
            }
            await withDiscardingTaskGroup { timers in
                if awaitingConnect {
                    let timeout = server.configuration.engine.connectTimeout
                    timers.addTask {
                        try? await Task.sleep(for: .milliseconds(timeout))
                        guard !Task.isCancelled else { return }
                        await self.connectTimedOut()
                    }
                }
                await read(into: enqueue)
                timers.cancelAll()
            }
            enqueue.finish()
            // No answer can come now: a handler waiting for one is told at once.
            for waiter in acks.endAll() { waiter.resume(returning: nil) }
        }
        let reason = await session.closeReason?.description ?? "transport close"
        if RecoveryStore.recoverableReasons.contains(reason) {
            // Kept for a client that comes back in time (connection-state recovery).
            for socket in sockets.values {
                if let recovery = socket.namespace.recovery, let kept = socket.session(at: RecoveryStore.now) { recovery.persist(kept) }
            }
        }
        for socket in sockets.values { await socket.markDisconnected(reason: reason) }
        sockets = [:]
    }

    /// The session's messages, decoded: acks answered at once, the rest queued for the handler.
    private func read(into enqueue: AsyncStream<SocketPacket>.Continuation) async {
        for await message in session.inbound {
            let packet: SocketPacket?
            do {
                packet = try codec.decode(message.payload)
            } catch {
                server.logger.debug("closing on a bad packet", metadata: ["sid": "\(session.sid)", "error": "\(error)"])
                await close(.parseError)
                return
            }
            guard let packet else { continue }
            if packet.type.isAck {
                await resolveAck(packet)
            } else {
                enqueue.yield(packet)
            }
        }
    }

    private func connectTimedOut() async {
        guard awaitingConnect else { return }
        await close(.connectTimeout)
    }

    private func handle(_ packet: SocketPacket) async {
        switch packet.type {
        case .connect:
            if sockets[packet.namespace] != nil {
                await close(.secondConnect(namespace: packet.namespace))
                return
            }
            await connect(namespace: packet.namespace, auth: packet.data, query: packet.query)
        case .disconnect:
            if let socket = sockets[packet.namespace] {
                await disconnect(socket, reason: "client namespace disconnect", notifyClient: false)
            }
        case .event, .binaryEvent:
            guard let socket = sockets[packet.namespace] else { return await close(.eventForUnconnectedNamespace) }
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
            await resolveAck(packet)
        case .connectError:
            await close(.connectErrorFromClient)
        }
    }

    private func resolveAck(_ packet: SocketPacket) async {
        guard sockets[packet.namespace] != nil else {
            await close(.ackForUnconnectedNamespace)
            return
        }
        if let id = packet.ackID { acks.answer(id, with: packet.arguments)?.resume(returning: packet.arguments) }
    }

    private func connect(namespace name: String, auth: JSONValue?, query: String?) async {
        guard let namespace = server.existingNamespace(name) else {
            await send(connectError(name, message: "Invalid namespace", data: nil))
            return
        }
        awaitingConnect = false
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

    /// Sends the event and waits for its ack, at most `timeout` milliseconds. The slot is taken
    /// before the event goes, so an answer that comes at once finds it; the wait and the timer are
    /// two child tasks, and whichever ends first ends the other.
    func emitWithAck(_ event: String, _ arguments: [JSONValue], namespace: String, timeout: Int) async throws -> [JSONValue] {
        let id = acks.reserve()
        await send(SocketPacket.event(event, arguments, namespace: namespace, ackID: id))
        let answer = await withTaskGroup(of: [JSONValue]?.self) { group in
            group.addTask { await self.ack(id) }
            group.addTask {
                try? await Task.sleep(for: .milliseconds(timeout))
                if !Task.isCancelled { await self.expireAck(id) }
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        guard let answer else { throw AckTimeout() }
        return answer
    }

    /// The ack's arguments once it comes; nil when it expires or the session ends first.
    private func ack(_ id: UInt64) async -> [JSONValue]? {
        await withCheckedContinuation { continuation in
            if let ready = acks.wait(id, continuation) { continuation.resume(returning: ready) }
        }
    }

    private func expireAck(_ id: UInt64) {
        if case .some(let waiter?) = acks.expire(id) { waiter.resume(returning: nil) }
    }

    func close(_ reason: CloseReason) async {
        await session.close(.application(reason.description))
    }
}

/// The acks a connection waits for, as a value: an id is reserved before its event goes, answered
/// (by the client), waited on (by `emitWithAck`), or expired (by its timer), in any order; each
/// ends once. `Waiter`: what is resumed (a continuation; anything in tests).
struct AckSlots<Waiter> {
    private enum Slot {
        case reserved
        case waiting(Waiter)
        case answered([JSONValue])
    }

    private var slots: [UInt64: Slot] = [:]
    private var next: UInt64 = 0

    mutating func reserve() -> UInt64 {
        defer { next += 1 }
        slots[next] = .reserved
        return next
    }

    /// The client's answer: the waiter to resume, if one waits (else kept for it).
    mutating func answer(_ id: UInt64, with arguments: [JSONValue]) -> Waiter? {
        switch slots[id] {
        case .reserved?:
            slots[id] = .answered(arguments)
            return nil
        case .waiting(let waiter)?:
            slots[id] = nil
            return waiter
        case .answered?, nil:
            // A second answer, or one for an ack no one waits for: ignored, as socket.io does.
            return nil
        }
    }

    /// The waiter's turn: the answer when it came already (the slot is done), else it waits.
    mutating func wait(_ id: UInt64, _ waiter: Waiter) -> [JSONValue]?? {
        switch slots[id] {
        case .answered(let arguments)?:
            slots[id] = nil
            return .some(arguments)
        case .reserved?:
            slots[id] = .waiting(waiter)
            return nil
        case .waiting?, nil:
            // Expired or ended before the waiter came: it gets nothing.
            return .some(nil)
        }
    }

    /// The timer ran out: the waiter to resume with nothing, if one waits.
    mutating func expire(_ id: UInt64) -> Waiter?? {
        guard let slot = slots.removeValue(forKey: id) else { return nil }
        if case .waiting(let waiter) = slot { return .some(waiter) }
        return .some(nil)
    }

    /// The session ended: every waiter, to resume with nothing.
    mutating func endAll() -> [Waiter] {
        defer { slots = [:] }
        return slots.values.compactMap { if case .waiting(let waiter) = $0 { waiter } else { nil } }
    }
}
