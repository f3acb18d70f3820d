public import SocketIOProtocol
import SocketIOTransport
import Synchronization
import NIOHTTP1

/// A Socket.IO client over WebSocket, for both protocol generations (Engine.IO 4 / Socket.IO v5,
/// and Engine.IO 3 / v4). Used by `siotap demo`; replay and bench build on it.
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

    public struct ClientError: Error, Sendable, CustomStringConvertible {
        public let description: String
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

    private struct State {
        var socket: WebSocketConnection?
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
    private let tasks = Mutex<[Task<Void, Never>]>([])

    public init(host: String, port: Int, path: String = "/socket.io/", engineVersion: EngineIOVersion = .v4, query: String = "") {
        self.host = host
        self.port = port
        self.path = path
        self.engineVersion = engineVersion
        self.query = query
        (events, eventContinuation) = AsyncStream<Event>.makeStream()
        (packets, packetContinuation) = AsyncStream<SocketPacket>.makeStream()
        state = Mutex(State(decoder: SocketIODecoder(version: SocketIOVersion(engine: engineVersion))))
    }

    /// Opens the Engine.IO session over a WebSocket and waits for the open packet.
    @discardableResult
    public func open(headers: [(String, String)] = []) async throws -> EngineHandshake {
        var uri = "\(path)?EIO=\(engineVersion.rawValue)&transport=websocket"
        if !query.isEmpty { uri += "&" + query }
        let outcome = try await WebSocketClient.connect(
            host: host, port: port, uri: uri, headers: HTTPHeaders(headers.map { ($0.0, $0.1) }), maxMessageSize: 64 << 20
        )
        guard case .upgraded(let socket, _, let run) = outcome else { throw ClientError(description: "the server refused the WebSocket") }
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
        throw ClientError(description: "the connection ended before the open packet")
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
            state.withLock { $0.ackWaiters.removeValue(forKey: id) }?.resume(throwing: ClientError(description: "operation has timed out"))
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
        let socket = state.withLock { $0.socket }
        socket?.send(EngineIOCodec.encode(EnginePacket(.close), version: engineVersion))
        socket?.close()
    }

    // MARK: Internals

    /// Sends a packet as it is (ack ids included), for replaying a capture.
    public func send(_ packet: SocketPacket) {
        let (text, attachments) = SocketIOCodec.encode(packet)
        guard let socket = state.withLock({ $0.socket }) else { return }
        socket.send(EngineIOCodec.encode(.message(text), version: engineVersion))
        for attachment in attachments { socket.send(EngineIOCodec.encode(.message(attachment), version: engineVersion)) }
    }

    private func receive(_ message: WebSocketMessage, opened: AsyncStream<EngineHandshake>.Continuation) {
        guard let packet = try? EngineIOCodec.decode(message, version: engineVersion) else { return }
        switch packet.type {
        case .open:
            if let text = packet.text, let handshake = try? EngineHandshake(json: text) {
                state.withLock { $0.handshake = handshake }
                opened.yield(handshake)
            }
        case .ping:
            state.withLock { $0.socket }?.send(EngineIOCodec.encode(EnginePacket(.pong, packet.payload), version: engineVersion))
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
                guard let socket = state.withLock({ $0.closed ? nil : $0.socket }) else { return }
                socket.send(EngineIOCodec.encode(EnginePacket(.ping), version: engineVersion))
            }
        }
        tasks.withLock { $0.append(task) }
    }

    private func finish() {
        let (connects, acks) = state.withLock { state in
            state.closed = true
            defer {
                state.connectWaiters = [:]
                state.ackWaiters = [:]
            }
            return (state.connectWaiters, state.ackWaiters)
        }
        for waiter in connects.values { waiter.resume(returning: .refused(.string("connection closed"))) }
        for waiter in acks.values { waiter.resume(throwing: ClientError(description: "connection closed")) }
        eventContinuation.finish()
        packetContinuation.finish()
        for task in tasks.withLock({ $0 }) { task.cancel() }
    }
}
