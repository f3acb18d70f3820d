public import SocketIOProtocol
import Synchronization

/// A Socket.IO namespace: its middleware, its connection handlers, its sockets.
public final class Namespace: Sendable {
    public enum Event: Sendable { case connection }

    public let name: String
    /// The server's default for `emitWithAck`, in milliseconds. Kept rather than the server
    /// itself: an unowned server crashed a socket that outlived it (the same crash session 5 fixed
    /// in `SocketConnection`).
    let ackTimeout: Int
    /// Set when the server recovers connection state.
    let recovery: RecoveryStore?
    private let middlewares = Mutex<[Middleware]>([])
    private let connectionHandlers = Mutex<[ConnectionHandler]>([])
    private let socketTable = Mutex<[String: Socket]>([:])

    init(name: String, ackTimeout: Int, recovery: RecoveryStore? = nil) {
        self.name = name
        self.ackTimeout = ackTimeout
        self.recovery = recovery
    }

    /// Adds a middleware; they run in order for every connection, and any may refuse it.
    public func use(_ middleware: @escaping Middleware) { middlewares.withLock { $0.append(middleware) } }

    public func on(_ event: Event, _ handler: @escaping ConnectionHandler) { connectionHandlers.withLock { $0.append(handler) } }

    /// The sockets connected now.
    public var sockets: [Socket] { socketTable.withLock { Array($0.values) } }

    public func emit(_ event: String, _ arguments: [JSONValue] = []) async {
        await BroadcastOperator(namespace: self).emit(event, arguments)
    }

    public func to(_ room: String) -> BroadcastOperator { BroadcastOperator(namespace: self).to(room) }
    public func except(_ room: String) -> BroadcastOperator { BroadcastOperator(namespace: self).except(room) }

    func runMiddlewares(_ socket: Socket) async throws {
        for middleware in middlewares.withLock({ $0 }) { try await middleware(socket) }
    }

    func connected(_ socket: Socket) async {
        socketTable.withLock { $0[socket.id] = socket }
        for handler in connectionHandlers.withLock({ $0 }) { await handler(socket) }
    }

    func removed(_ socket: Socket) { socketTable.withLock { _ = $0.removeValue(forKey: socket.id) } }
}

/// Chooses recipients: `io.to("room").except("other").emit(...)`, `socket.broadcast.emit(...)`.
public struct BroadcastOperator: Sendable {
    let namespace: Namespace
    var rooms: Set<String> = []
    var exceptRooms: Set<String> = []
    var exceptSocket: String?

    public func to(_ room: String) -> BroadcastOperator {
        var copy = self
        copy.rooms.insert(room)
        return copy
    }

    public func except(_ room: String) -> BroadcastOperator {
        var copy = self
        copy.exceptRooms.insert(room)
        return copy
    }

    /// The sockets this would reach.
    public var sockets: [Socket] {
        namespace.sockets.filter { socket in
            guard socket.id != exceptSocket else { return false }
            let joined = socket.rooms
            if !rooms.isEmpty, joined.isDisjoint(with: rooms) { return false }
            return joined.isDisjoint(with: exceptRooms)
        }
    }

    public func emit(_ event: String, _ arguments: [JSONValue] = []) async {
        var arguments = arguments
        if let recovery = namespace.recovery {
            // Kept for clients that come back, its offset sent last (socket.io's format).
            let data = [JSONValue.string(event)] + arguments
            arguments.append(.string(recovery.record(data, rooms: rooms, exceptRooms: exceptRooms, exceptSocket: exceptSocket, now: RecoveryStore.now)))
        }
        let packet = SocketPacket.event(event, arguments, namespace: namespace.name)
        for socket in sockets.sorted(by: { $0.connectedOrder < $1.connectedOrder }) { await socket.send(packet) }
    }
}
