import Logging
public import SocketIOProtocol
import SocketIOTransport
import Synchronization

/// A Socket.IO server (protocol v5 for Engine.IO 4 clients, v4 for Engine.IO 3 clients) that
/// reads like socket.io's:
///
/// ```swift
/// let io = SocketIOServer()
/// io.use { socket in
///     guard socket.handshake.auth["token"] != nil else { throw ConnectionRefused("No token provided") }
/// }
/// io.on(.connection) { socket in
///     socket.on("chat message") { args, ack in
///         await io.emit("chat message", args)
///         await ack?("delivered")
///     }
/// }
/// let port = try await io.start(port: 3000)
/// ```
public final class SocketIOServer: Sendable {
    public struct Configuration: Sendable {
        public var engine: EngineConfiguration
        /// Milliseconds `emitWithAck` waits by default.
        public var ackTimeout: Int
        /// How packets are written: JSON text (socket.io-parser, the default) or msgpack
        /// (socket.io-msgpack-parser, python-socketio's `serializer="msgpack"`). Clients must use the same.
        public var parser: SocketIOParser
        /// Connection-state recovery (socket.io 4.6+'s `connectionStateRecovery`): the longest a
        /// client may be away, in milliseconds, and still get its socket back with the events it
        /// missed. nil: off. Protocol v5 clients only; events get their offset as a last argument.
        public var recoveryMilliseconds: Int?

        public init(
            engine: EngineConfiguration = EngineConfiguration(), ackTimeout: Int = 10_000, parser: SocketIOParser = .json,
            recoveryMilliseconds: Int? = nil
        ) {
            self.engine = engine
            self.ackTimeout = ackTimeout
            self.parser = parser
            self.recoveryMilliseconds = recoveryMilliseconds
        }
    }

    public let configuration: Configuration
    let logger: Logger
    private let namespaces = Mutex<[String: Namespace]>([:])
    private let running = Mutex<(http: HTTPServer?, task: Task<Void, Never>?, sessions: AsyncStream<@Sendable () async -> Void>.Continuation?)>((nil, nil, nil))
    private let engine: Mutex<EngineServer?> = Mutex(nil)
    /// Extra Engine.IO endpoints without Socket.IO on top (the conformance app's echo).
    private let echoPaths = Mutex<[String]>([])
    private let echoEngines = Mutex<[EngineServer]>([])

    public init(configuration: Configuration = Configuration(), logger: Logger = Logger(label: "siotap.server")) {
        self.configuration = configuration
        self.logger = logger
        _ = of("/")
    }

    /// The namespace `name`, made on first use (like `io.of`).
    public func of(_ name: String) -> Namespace {
        namespaces.withLock { namespaces in
            if let existing = namespaces[name] { return existing }
            let namespace = Namespace(
                name: name, ackTimeout: configuration.ackTimeout,
                recovery: configuration.recoveryMilliseconds.map { RecoveryStore(maxDisconnectionMilliseconds: $0) }
            )
            namespaces[name] = namespace
            return namespace
        }
    }

    func existingNamespace(_ name: String) -> Namespace? { namespaces.withLock { $0[name] } }

    /// The main namespace's middleware.
    public func use(_ middleware: @escaping Middleware) { of("/").use(middleware) }

    /// The main namespace's connection handler.
    public func on(_ event: Namespace.Event, _ handler: @escaping ConnectionHandler) { of("/").on(event, handler) }

    /// Emits to every socket of the main namespace.
    public func emit(_ event: String, _ arguments: [JSONValue] = []) async { await of("/").emit(event, arguments) }

    public func to(_ room: String) -> BroadcastOperator { of("/").to(room) }

    // MARK: Running

    /// Binds and serves in the background; returns the port (useful with port 0).
    @discardableResult
    public func start(host: String = "127.0.0.1", port: Int = 3000) async throws -> Int {
        // Each session's Socket.IO side runs as a child of the server's task, not on its own.
        let (sessions, runSession) = AsyncStream<@Sendable () async -> Void>.makeStream()
        let engine = EngineServer(configuration: configuration.engine) { [weak self] session in
            guard let self else { return }
            let connection = SocketConnection(session: session, server: self)
            await connection.open()
            runSession.yield { await connection.run() }
        }
        self.engine.withLock { $0 = engine }
        var echoConfiguration = configuration.engine
        let echoes = echoPaths.withLock { $0 }.map { path in
            echoConfiguration.path = path
            return EngineServer(configuration: echoConfiguration) { session in
                runSession.yield { for await packet in session.inbound { await session.send([packet]) } }
            }
        }
        echoEngines.withLock { $0 = echoes }
        let router = EngineRouter(engines: [engine] + echoes)
        let http: HTTPServer
        do {
            http = try await HTTPServer.bind(
                HTTPServer.Configuration(host: host, port: port, maxBodySize: configuration.engine.maxPayload),
                delegate: router
            )
        } catch {
            runSession.finish()
            throw error
        }
        let task = Task {
            await withDiscardingTaskGroup { group in
                group.addTask { await http.run(delegate: router) }
                for await run in sessions { group.addTask { await run() } }
            }
        }
        running.withLock { $0 = (http, task, runSession) }
        return http.port
    }

    /// Serves until ``shutdown()``.
    public func run(host: String = "127.0.0.1", port: Int = 3000) async throws {
        try await start(host: host, port: port)
        await running.withLock { $0.task }?.value
    }

    /// Stops listening and closes every session.
    public func shutdown() async {
        let (http, task, sessions) = running.withLock { state in
            let current = state
            state = (nil, nil, nil)
            return current
        }
        await http?.close()
        await engine.withLock { $0 }?.closeAll(reason: .serverShuttingDown)
        for echo in echoEngines.withLock({ $0 }) { await echo.closeAll(reason: .serverShuttingDown) }
        sessions?.finish()
        task?.cancel()
    }

    /// Serves a bare Engine.IO endpoint at `path` that echoes every message (what the
    /// engine.io-protocol suite talks to). Call before ``start(host:port:)``.
    public func addEngineEcho(path: String) {
        echoPaths.withLock { $0.append(path.hasSuffix("/") ? path : path + "/") }
    }

    /// Sessions open now (for tests and leak checks).
    public var sessionCount: Int { engine.withLock { $0 }?.sessionCount ?? 0 }

}

public typealias Middleware = @Sendable (Socket) async throws -> Void
public typealias ConnectionHandler = @Sendable (Socket) async -> Void
public typealias EventHandler = @Sendable (_ arguments: [JSONValue], _ ack: Acknowledgement?) async -> Void

/// Thrown by a middleware to refuse a connection: the client gets a CONNECT_ERROR with this
/// message (and data, when given).
public struct ConnectionRefused: Error, Sendable {
    public var message: String
    public var data: JSONValue?

    public init(_ message: String, data: JSONValue? = nil) {
        self.message = message
        self.data = data
    }
}

/// The callback a client's event asked for; call it once with the reply.
public struct Acknowledgement: Sendable {
    let reply: @Sendable ([JSONValue]) async -> Void

    public func callAsFunction(_ arguments: JSONValue...) async { await reply(arguments) }
    public func send(_ arguments: [JSONValue]) async { await reply(arguments) }
}

/// `emitWithAck` got no answer in time.
public struct AckTimeout: Error, Sendable, CustomStringConvertible {
    public var description: String { "operation has timed out" }
}
