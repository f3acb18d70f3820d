public import SocketIOProtocol
import Synchronization

/// One client's connection to one namespace.
public final class Socket: Sendable {
    /// What the client sent when it connected.
    public struct Handshake: Sendable {
        /// The CONNECT payload (`{}` when there was none; for protocol v4, built from the query).
        public var auth: JSONValue
        /// The query of the first HTTP request, decoded.
        public var query: [(name: String, value: String)]
        public var headers: [(name: String, value: String)]
        public var address: String
        public var engineVersion: EngineIOVersion

        public func query(_ name: String) -> String? { query.first { $0.name == name }?.value }
        public func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name.lowercased() }?.value }
    }

    public let id: String
    public let namespace: Namespace
    public let handshake: Handshake
    /// With connection-state recovery: the private id the client gets (and sends back to recover).
    public let pid: String?
    /// Whether this socket is one recovered after its client lost its connection (its id, rooms and
    /// data are those it had, and the events it missed were sent again).
    public let recovered: Bool
    let connection: SocketConnection
    let connectedOrder: UInt64

    private struct State {
        var handlers: [String: EventHandler] = [:]
        var anyHandlers: [@Sendable (String, [JSONValue]) async -> Void] = []
        var disconnectHandlers: [@Sendable (String) async -> Void] = []
        var rooms: Set<String> = []
        var data: [String: JSONValue] = [:]
        var connected = true
    }

    private let state = Mutex(State())

    init(
        id: String, namespace: Namespace, handshake: Handshake, connection: SocketConnection, order: UInt64, pid: String? = nil,
        recovered: RecoveryStore.Session? = nil
    ) {
        self.id = id
        self.namespace = namespace
        self.handshake = handshake
        self.connection = connection
        self.connectedOrder = order
        self.pid = pid
        self.recovered = recovered != nil
        state.withLock { state in
            state.rooms = recovered?.rooms ?? [id]
            state.data = recovered?.data ?? [:]
        }
    }

    /// What is kept of the socket while its client is away (recovery).
    func session(at now: Double) -> RecoveryStore.Session? {
        guard let pid else { return nil }
        return state.withLock { RecoveryStore.Session(sid: id, pid: pid, rooms: $0.rooms, data: $0.data, disconnectedAt: now) }
    }

    /// Per-socket values for the application (like `socket.data`), e.g. the verified user.
    public subscript(data key: String) -> JSONValue? {
        get { state.withLock { $0.data[key] } }
        set { state.withLock { $0.data[key] = newValue } }
    }

    public var isConnected: Bool { state.withLock { $0.connected } }
    public var rooms: Set<String> { state.withLock { $0.rooms } }

    /// Handles `event`; a later handler for the same event replaces the earlier one.
    public func on(_ event: String, _ handler: @escaping EventHandler) { state.withLock { $0.handlers[event] = handler } }

    /// Sees every event, after its own handler.
    public func onAny(_ handler: @escaping @Sendable (String, [JSONValue]) async -> Void) { state.withLock { $0.anyHandlers.append(handler) } }

    /// Called with the reason when the socket disconnects.
    public func onDisconnect(_ handler: @escaping @Sendable (String) async -> Void) {
        state.withLock { $0.disconnectHandlers.append(handler) }
    }

    public func join(_ room: String) { state.withLock { _ = $0.rooms.insert(room) } }
    public func leave(_ room: String) { state.withLock { _ = $0.rooms.remove(room) } }

    public func emit(_ event: String, _ arguments: [JSONValue] = []) async {
        var arguments = arguments
        if let recovery = namespace.recovery, pid != nil {
            let data = [JSONValue.string(event)] + arguments
            arguments.append(.string(recovery.record(data, rooms: [id], exceptRooms: [], exceptSocket: nil, now: RecoveryStore.now)))
        }
        await send(SocketPacket.event(event, arguments, namespace: namespace.name))
    }

    /// Emits and waits for the client's acknowledgement.
    public func emitWithAck(_ event: String, _ arguments: [JSONValue] = [], timeout milliseconds: Int? = nil) async throws -> [JSONValue] {
        try await connection.emitWithAck(
            event, arguments, namespace: namespace.name, timeout: milliseconds ?? namespace.ackTimeout
        )
    }

    /// Every other socket of the namespace.
    public var broadcast: BroadcastOperator { BroadcastOperator(namespace: namespace, exceptSocket: id) }

    /// Other sockets in `room`.
    public func to(_ room: String) -> BroadcastOperator { broadcast.to(room) }

    /// Leaves the namespace (`41`); with `closeConnection` the whole Engine.IO session ends.
    public func disconnect(closeConnection: Bool = false) async {
        await connection.disconnect(self, reason: "server namespace disconnect", notifyClient: true)
        if closeConnection { await connection.close(.forcedServerClose) }
    }

    func send(_ packet: SocketPacket) async {
        guard isConnected else { return }
        await connection.send(packet)
    }

    func handle(event: String, arguments: [JSONValue], ack: Acknowledgement?) async {
        let (handler, anyHandlers) = state.withLock { ($0.handlers[event], $0.anyHandlers) }
        await handler?(arguments, ack)
        for any in anyHandlers { await any(event, arguments) }
    }

    /// Marks the socket gone and runs its disconnect handlers once.
    func markDisconnected(reason: String) async {
        let handlers: [@Sendable (String) async -> Void]? = state.withLock { state in
            guard state.connected else { return nil }
            state.connected = false
            state.rooms = []
            return state.disconnectHandlers
        }
        guard let handlers else { return }
        namespace.removed(self)
        for handler in handlers { await handler(reason) }
    }
}
