public import SocketIOProtocol
import SocketIOTransport
import Synchronization
import NIOHTTP1

/// A Socket.IO client for both protocol generations (Engine.IO 4 / Socket.IO v5, and Engine.IO 3
/// / v4) over WebSocket, HTTP long-polling, or polling then the upgrade. Used by `siotap demo`
/// and `siotap replay`.
///
/// ```swift
/// let client = SocketIOClient(host: "127.0.0.1", port: 3000)
/// try await client.open()
/// let reply = try await client.connect(auth: ["token": .string(token)])
/// await client.emit("message", [.object(["message": "hi"])])
/// for await event in client.events { print(event.name, event.arguments) }
/// ```
public final class SocketIOClient: Sendable {
    public struct Event: Sendable, Hashable {
        public var namespace: String
        public var name: String
        public var arguments: [JSONValue]
    }

    /// What a namespace answered to CONNECT.
    public enum ConnectReply: Sendable, Hashable {
        case accepted(JSONValue?)
        case refused(JSONValue?)
    }

    /// A failure of the Engine.IO or Socket.IO exchange itself. Failures of the request beneath
    /// (unreachable, refused, redirected) are thrown as ``HTTPClientError``.
    public struct ClientError: Error, Sendable, Hashable, CustomStringConvertible {
        public enum Code: String, Sendable, Hashable {
            /// The answer to the handshake is not an Engine.IO open packet.
            case badHandshake = "client.bad_handshake"
            /// The WebSocket of an upgrade never answered the probe.
            case upgradeFailed = "client.upgrade_failed"
            /// No ack within the time asked.
            case timedOut = "client.timed_out"
            /// The session ended while something waited on it.
            case connectionClosed = "client.connection_closed"
        }

        public let code: Code
        public let description: String

        init(_ code: Code, _ description: String) {
            self.code = code
            self.description = description
        }
    }

    public let host: String
    public let port: Int
    public let path: String
    public let engineVersion: EngineIOVersion
    public let query: String
    /// Events from the server, in order.
    public let events: AsyncStream<Event>
    private let eventContinuation: AsyncStream<Event>.Continuation
    /// Every Socket.IO packet from the server, in order (replay compares them with a capture).
    public let packets: AsyncStream<SocketPacket>
    private let packetContinuation: AsyncStream<SocketPacket>.Continuation

    /// How the client reaches the server.
    public enum TransportMode: Sendable, Hashable {
        case websocket
        case polling
        /// Polling first, then the upgrade to WebSocket (`2probe`, `3probe`, `5`).
        case pollingThenUpgrade
    }

    private struct State {
        var socket: WebSocketConnection?
        /// While polling: the session id the polls carry. Cleared once upgraded.
        var pollingSid: String?
        var probeAnswered: CheckedContinuation<Bool, Never>?
        var handshake: EngineHandshake?
        var decoder: SocketIODecoder
        var connectWaiters: [String: CheckedContinuation<ConnectReply, Never>] = [:]
        /// Replies that came before anyone asked (protocol v4 connects `/` unasked).
        var connectReplies: [String: ConnectReply] = [:]
        var ackWaiters: [UInt64: CheckedContinuation<[JSONValue], any Error>] = [:]
        var nextAckID: UInt64 = 0
        var closed = false
    }

    private let state: Mutex<State>
    /// The polling requests' kept-alive connections (a long-poll and a POST may be in flight at once).
    private let http: HTTPConnectionPool
    private let tasks = Mutex<[Task<Void, Never>]>([])

    public init(host: String, port: Int, path: String = "/socket.io/", engineVersion: EngineIOVersion = .v4, query: String = "") {
        self.host = host
        self.port = port
        self.path = path
        self.engineVersion = engineVersion
        self.query = query
        http = HTTPConnectionPool(host: host, port: port, maxIdle: 2)
        (events, eventContinuation) = AsyncStream<Event>.makeStream()
        (packets, packetContinuation) = AsyncStream<SocketPacket>.makeStream()
        state = Mutex(State(decoder: SocketIODecoder(version: SocketIOVersion(engine: engineVersion))))
    }

    /// Opens the Engine.IO session over a WebSocket and waits for the open packet.
    @discardableResult
    public func open(transport: TransportMode = .websocket, headers: [(String, String)] = []) async throws -> EngineHandshake {
        if transport != .websocket { return try await openPolling(upgrade: transport == .pollingThenUpgrade, headers: headers) }
        var uri = "\(path)?EIO=\(engineVersion.rawValue)&transport=websocket"
        if !query.isEmpty { uri += "&" + query }
        let (socket, _, run) = try await WebSocketClient.connect(
            host: host, port: port, uri: uri, headers: HTTPHeaders(headers.map { ($0.0, $0.1) }), maxMessageSize: 64 << 20
        )
        state.withLock { $0.socket = socket }
        let (opened, openedContinuation) = AsyncStream<EngineHandshake>.makeStream()
        let reader = Task {
            for await message in socket.messages {
                self.receive(message, opened: openedContinuation)
            }
            openedContinuation.finish()
            self.finish()
        }
        let runner = Task { await run() }
        tasks.withLock { $0 += [reader, runner] }
        for await handshake in opened {
            if engineVersion == .v3 { startPinging(interval: handshake.pingInterval) }
            return handshake
        }
        throw ClientError(.badHandshake, HTTPClient.requestLine("GET", "ws", host: host, port: port, target: uri) + ": the connection ended before the open packet")
    }

    /// Connects a namespace; protocol v4 connects `/` by itself (its reply is awaited here too).
    public func connect(namespace: String = "/", auth: JSONValue? = nil) async -> ConnectReply {
        await withCheckedContinuation { continuation in
            let early = state.withLock { state -> ConnectReply? in
                if let reply = state.connectReplies.removeValue(forKey: namespace) { return reply }
                state.connectWaiters[namespace] = continuation
                return nil
            }
            if let early {
                continuation.resume(returning: early)
                return
            }
            if engineVersion == .v4 || namespace != "/" {
                send(SocketPacket(.connect, namespace: namespace, data: engineVersion == .v4 ? auth : nil))
            }
        }
    }

    public func emit(_ event: String, _ arguments: [JSONValue] = [], namespace: String = "/") {
        send(SocketPacket.event(event, arguments, namespace: namespace))
    }

    public func emitWithAck(_ event: String, _ arguments: [JSONValue] = [], namespace: String = "/", timeout milliseconds: Int = 5_000) async throws -> [JSONValue] {
        let id = state.withLock { state in
            defer { state.nextAckID += 1 }
            return state.nextAckID
        }
        let timer = Task {
            try? await Task.sleep(for: .milliseconds(milliseconds))
            guard !Task.isCancelled else { return }
            state.withLock { $0.ackWaiters.removeValue(forKey: id) }?.resume(throwing: ClientError(.timedOut, "operation has timed out"))
        }
        defer { timer.cancel() }
        return try await withCheckedThrowingContinuation { continuation in
            state.withLock { $0.ackWaiters[id] = continuation }
            send(SocketPacket.event(event, arguments, namespace: namespace, ackID: id))
        }
    }

    public func disconnect(namespace: String = "/") { send(SocketPacket(.disconnect, namespace: namespace)) }

    /// Ends the Engine.IO session (a close packet, then the WebSocket close).
    public func close() {
        sendEngine([EnginePacket(.close)])
        state.withLock { $0.socket }?.close()
        if state.withLock({ $0.pollingSid != nil }) {
            Task {
                await postChain.withLock { $0 }?.value
                finish()
            }
        }
    }

    // MARK: Internals

    /// Sends a packet as it is (ack ids included), for replaying a capture.
    public func send(_ packet: SocketPacket) {
        let (text, attachments) = SocketIOCodec.encode(packet)
        sendEngine([.message(text)] + attachments.map { EnginePacket.message($0) })
    }

    /// Engine.IO packets out, over whichever transport is current (in order: polling sends are
    /// chained one after the other).
    private func sendEngine(_ packets: [EnginePacket]) {
        let (socket, sid) = state.withLock { ($0.socket, $0.pollingSid) }
        if let sid {
            let body = EngineIOCodec.encodePayload(packets, version: engineVersion).body
            let previous = postChain.withLock { $0 }
            let next = Task {
                await previous?.value
                _ = try? await http.send(head: pollingHead(.POST, sid: sid, length: body.count), body: body)
            }
            postChain.withLock { $0 = next }
            return
        }
        for packet in packets { socket?.send(EngineIOCodec.encode(packet, version: engineVersion)) }
    }

    private let postChain = Mutex<Task<Void, Never>?>(nil)

    private func pollingHead(_ method: HTTPMethod, sid: String?, length: Int = 0) -> HTTPRequestHead {
        var uri = "\(path)?EIO=\(engineVersion.rawValue)&transport=polling"
        if !query.isEmpty { uri += "&" + query }
        if let sid { uri += "&sid=\(sid)" }
        var headers: HTTPHeaders = ["Host": "\(host):\(port)"]
        if method == .POST {
            headers.add(name: "Content-Type", value: "text/plain;charset=UTF-8")
            headers.add(name: "Content-Length", value: String(length))
        }
        return HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: headers)
    }

    private func openPolling(upgrade: Bool, headers: [(String, String)]) async throws -> EngineHandshake {
        var head = pollingHead(.GET, sid: nil)
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        let response = try await http.send(head: head, body: [])
        let request = HTTPClient.requestLine("GET", "http", host: host, port: port, target: head.uri)
        guard response.status == .ok else {
            throw HTTPClientError.unexpected(HTTPResponseHead(version: .http1_1, status: response.status, headers: response.headers), body: response.body, request: request)
        }
        guard let packets = try? EngineIOCodec.decodePayload(response.body, version: engineVersion),
            let open = packets.first, open.type == .open, let text = open.text, let handshake = try? EngineHandshake(json: text)
        else {
            throw ClientError(.badHandshake, "\(request): the answer is not an Engine.IO open packet: \(HTTPClientError.bodyStart(response.body))")
        }
        state.withLock {
            $0.handshake = handshake
            $0.pollingSid = handshake.sid
        }
        // The open packet is already read: later ones have nobody to tell.
        let (_, noOpenWaiter) = AsyncStream<EngineHandshake>.makeStream()
        for packet in packets.dropFirst() { receive(packet, opened: noOpenWaiter) }
        let poller = Task { await self.pollLoop(sid: handshake.sid, opened: noOpenWaiter) }
        tasks.withLock { $0.append(poller) }
        if engineVersion == .v3 { startPinging(interval: handshake.pingInterval) }
        if upgrade, handshake.upgrades.contains("websocket") { try await self.upgrade(sid: handshake.sid, headers: headers) }
        return handshake
    }

    private func pollLoop(sid: String, opened: AsyncStream<EngineHandshake>.Continuation) async {
        while !Task.isCancelled, state.withLock({ $0.pollingSid == sid && !$0.closed }) {
            guard let response = try? await http.send(head: pollingHead(.GET, sid: sid), body: []),
                response.status == .ok, let packets = try? EngineIOCodec.decodePayload(response.body, version: engineVersion)
            else {
                // Upgraded meanwhile, or the session is over.
                if state.withLock({ $0.pollingSid == sid }) { finish() }
                return
            }
            for packet in packets { receive(packet, opened: opened) }
        }
    }

    /// The polling-to-websocket upgrade: probe, then `5`, then everything goes over the socket.
    private func upgrade(sid: String, headers: [(String, String)]) async throws {
        var uri = "\(path)?EIO=\(engineVersion.rawValue)&transport=websocket&sid=\(sid)"
        if !query.isEmpty { uri += "&" + query }
        let (socket, _, run) = try await WebSocketClient.connect(
            host: host, port: port, uri: uri, headers: HTTPHeaders(headers.map { ($0.0, $0.1) }), maxMessageSize: 64 << 20
        )
        let (_, noOpenWaiter) = AsyncStream<EngineHandshake>.makeStream()
        let reader = Task {
            for await message in socket.messages { self.receive(message, opened: noOpenWaiter, probeSocket: socket) }
            self.finish()
        }
        let runner = Task { await run() }
        tasks.withLock { $0 += [reader, runner] }
        let answered = await withCheckedContinuation { continuation in
            state.withLock { $0.probeAnswered = continuation }
            socket.send(EngineIOCodec.encode(EnginePacket(.ping, .text("probe")), version: engineVersion))
        }
        guard answered else { throw ClientError(.upgradeFailed, HTTPClient.requestLine("GET", "ws", host: host, port: port, target: uri) + ": the server never answered the upgrade's probe") }
        await postChain.withLock { $0 }?.value
        state.withLock {
            $0.pollingSid = nil
            $0.socket = socket
        }
        socket.send(EngineIOCodec.encode(EnginePacket(.upgrade), version: engineVersion))
    }

    private func receive(_ message: WebSocketMessage, opened: AsyncStream<EngineHandshake>.Continuation, probeSocket: WebSocketConnection? = nil) {
        guard let packet = try? EngineIOCodec.decode(message, version: engineVersion) else { return }
        if probeSocket != nil, packet.type == .pong, packet.text == "probe" {
            state.withLock { state in
                defer { state.probeAnswered = nil }
                return state.probeAnswered
            }?.resume(returning: true)
            return
        }
        receive(packet, opened: opened)
    }

    private func receive(_ packet: EnginePacket, opened: AsyncStream<EngineHandshake>.Continuation) {
        switch packet.type {
        case .open:
            if let text = packet.text, let handshake = try? EngineHandshake(json: text) {
                state.withLock { $0.handshake = handshake }
                opened.yield(handshake)
            }
        case .ping:
            sendEngine([EnginePacket(.pong, packet.payload)])
        case .close:
            close()
        case .message:
            let decoded: SocketPacket?? = state.withLock { state in
                switch packet.payload {
                case .text(let text): try? state.decoder.decode(text: text)
                case .binary(let bytes): try? state.decoder.decode(binary: bytes)
                case .none: nil
                }
            }
            if let decoded = decoded ?? nil { dispatch(decoded) }
        default:
            break
        }
    }

    private func dispatch(_ packet: SocketPacket) {
        packetContinuation.yield(packet)
        switch packet.type {
        case .connect, .connectError:
            let reply: ConnectReply = packet.type == .connect ? .accepted(packet.data) : .refused(packet.data)
            let waiter = state.withLock { state in
                let waiter = state.connectWaiters.removeValue(forKey: packet.namespace)
                if waiter == nil { state.connectReplies[packet.namespace] = reply }
                return waiter
            }
            waiter?.resume(returning: reply)
        case .event, .binaryEvent:
            if let name = packet.eventName {
                eventContinuation.yield(Event(namespace: packet.namespace, name: name, arguments: packet.arguments))
            }
        case .ack, .binaryAck:
            if let id = packet.ackID, let waiter = state.withLock({ $0.ackWaiters.removeValue(forKey: id) }) {
                waiter.resume(returning: packet.arguments)
            }
        case .disconnect:
            eventContinuation.yield(Event(namespace: packet.namespace, name: "disconnect", arguments: []))
        }
    }

    private func startPinging(interval: Int) {
        let task = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(interval))
                guard !state.withLock({ $0.closed }) else { return }
                sendEngine([EnginePacket(.ping)])
            }
        }
        tasks.withLock { $0.append(task) }
    }

    private func finish() {
        http.close()
        let (connects, acks, probe) = state.withLock { state in
            state.closed = true
            state.pollingSid = nil
            let probe = state.probeAnswered
            state.probeAnswered = nil
            defer {
                state.connectWaiters = [:]
                state.ackWaiters = [:]
            }
            return (state.connectWaiters, state.ackWaiters, probe)
        }
        probe?.resume(returning: false)
        for waiter in connects.values { waiter.resume(returning: .refused(.string("connection closed"))) }
        for waiter in acks.values { waiter.resume(throwing: ClientError(.connectionClosed, "connection closed")) }
        eventContinuation.finish()
        packetContinuation.finish()
        for task in tasks.withLock({ $0 }) { task.cancel() }
    }
}
