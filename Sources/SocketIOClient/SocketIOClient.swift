public import SocketIOProtocol
import SocketIOTransport
import Synchronization

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

    /// Events from the server, in order.
    public let events: AsyncStream<Event>
    private let eventContinuation: AsyncStream<Event>.Continuation
    /// Every Socket.IO packet from the server, in order (replay compares them with a capture).
    public let packets: AsyncStream<SocketPacket>
    private let packetContinuation: AsyncStream<SocketPacket>.Continuation

    /// How the client reaches the server: the transport it starts on, and whether it then
    /// upgrades to WebSocket (`2probe`, `3probe`, `5`).
    public struct TransportPlan: Sendable, Hashable {
        public var start: EngineTransport
        public var upgrades: Bool

        public init(start: EngineTransport, upgrades: Bool = false) {
            self.start = start
            self.upgrades = upgrades && start == .polling
        }

        public static let websocket = TransportPlan(start: .websocket)
        public static let polling = TransportPlan(start: .polling)
        public static let pollingThenUpgrade = TransportPlan(start: .polling, upgrades: true)

        /// The transport the session ends up on.
        public var final: EngineTransport { upgrades ? .websocket : start }
    }

    private struct State {
        var codec: SocketIOPacketCodec
        var connectWaiters: [String: CheckedContinuation<ConnectReply, Never>] = [:]
        /// Replies that came before anyone asked (protocol v4 connects `/` unasked).
        var connectReplies: [String: ConnectReply] = [:]
        var ackWaiters: [UInt64: CheckedContinuation<[JSONValue], any Error>] = [:]
        var nextAckID: UInt64 = 0
        var closed = false
    }

    /// The Engine.IO session beneath.
    public let engine: EngineIOClient
    private let state: Mutex<State>
    private let reader = Mutex<Task<Void, Never>?>(nil)

    /// How packets are written; the server must use the same parser.
    public let parser: SocketIOParser

    /// - Parameter streamsEvents: false for a client that reads ``packets`` only (a load's
    ///   virtual user): ``events`` then ends at once rather than keeping every event unread.
    public init(
        host: String, port: Int, path: String = "/socket.io/", engineVersion: EngineIOVersion = .v4, query: String = "", parser: SocketIOParser = .json,
        tls: TLSClientSettings? = nil, streamsEvents: Bool = true
    ) {
        engine = EngineIOClient(host: host, port: port, path: path, engineVersion: engineVersion, query: query, tls: tls)
        (events, eventContinuation) = AsyncStream<Event>.makeStream()
        if !streamsEvents { eventContinuation.finish() }
        (packets, packetContinuation) = AsyncStream<SocketPacket>.makeStream()
        self.parser = parser
        state = Mutex(State(codec: SocketIOPacketCodec(parser: parser, version: SocketIOVersion(engine: engineVersion))))
    }

    public var host: String { engine.host }
    public var port: Int { engine.port }
    public var path: String { engine.path }
    public var engineVersion: EngineIOVersion { engine.engineVersion }
    public var query: String { engine.query }

    /// Opens the Engine.IO session and starts reading Socket.IO packets from it.
    @discardableResult
    public func open(transport: TransportPlan = .websocket, headers: [(String, String)] = []) async throws -> EngineHandshake {
        let engine = engine
        let task = Task {
            for await packet in engine.packets { self.receive(packet) }
            self.finish()
        }
        reader.withLock { $0 = task }
        do {
            return try await engine.open(transport, headers: headers)
        } catch {
            task.cancel()
            finish()
            throw error
        }
    }

    /// Connects a namespace; protocol v4 connects `/` by itself (its reply is awaited here too).
    public func connect(namespace: String = "/", auth: JSONValue? = nil) async -> ConnectReply {
        await withCheckedContinuation { continuation in
            let early = state.withLock { state -> ConnectReply? in
                if let reply = state.connectReplies.removeValue(forKey: namespace) { return reply }
                if state.closed { return .refused(.string("connection closed")) }
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
            let closed = state.withLock { state in
                if !state.closed { state.ackWaiters[id] = continuation }
                return state.closed
            }
            if closed {
                continuation.resume(throwing: ClientError(.connectionClosed, "connection closed"))
                return
            }
            send(SocketPacket.event(event, arguments, namespace: namespace, ackID: id))
        }
    }

    public func disconnect(namespace: String = "/") { send(SocketPacket(.disconnect, namespace: namespace)) }

    /// Ends the Engine.IO session (a close packet, then the transport's end).
    public func close() {
        engine.close()
    }

    /// Sends a packet as it is (ack ids included), for replaying a capture.
    public func send(_ packet: SocketPacket) {
        engine.send(state.withLock { $0.codec.encode(packet) })
    }

    // MARK: Packets in

    private func receive(_ packet: EnginePacket) {
        guard packet.type == .message else { return }
        let decoded: SocketPacket?? = state.withLock { state in try? state.codec.decode(packet.payload) }
        if let decoded = decoded ?? nil { dispatch(decoded) }
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
        for waiter in acks.values { waiter.resume(throwing: ClientError(.connectionClosed, "connection closed")) }
        eventContinuation.finish()
        packetContinuation.finish()
    }
}
