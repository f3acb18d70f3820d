public import SocketIOProtocol
import SocketIOTransport
import Synchronization

/// A bare Engine.IO server (no Socket.IO on top): each session is handed over as an
/// ``EngineConnection`` of raw packets. `siotap mock` plays recorded server packets with it.
public final class EngineEndpoint: Sendable {
    private let engine: EngineServer
    private let http = Mutex<HTTPServer?>(nil)
    private let serving = Mutex<Task<Void, Never>?>(nil)

    public init(configuration: EngineConfiguration = EngineConfiguration(), onSession: @escaping @Sendable (EngineConnection) async -> Void) {
        engine = EngineServer(configuration: configuration) { session in
            let connection = EngineConnection(session: session)
            Task { await onSession(connection) }
        }
    }

    /// Binds and serves in the background; returns the port.
    public func start(host: String = "127.0.0.1", port: Int = 0) async throws -> Int {
        let server = try await HTTPServer.bind(.init(host: host, port: port, maxBodySize: engine.configuration.maxPayload), delegate: engine)
        http.withLock { $0 = server }
        serving.withLock { $0 = Task { await server.run(delegate: engine) } }
        return server.port
    }

    public func shutdown() async {
        await http.withLock { $0 }?.close()
        await engine.closeAll(reason: .serverShuttingDown)
        serving.withLock { $0 }?.cancel()
    }
}

/// One Engine.IO session of an ``EngineEndpoint``.
public struct EngineConnection: Sendable {
    let session: EngineSession

    public var sid: String { session.sid }
    public var version: EngineIOVersion { session.version }
    /// The client's `message` packets, in order; ends with the session.
    public var messages: AsyncStream<EnginePacket> { session.inbound }

    public func send(_ packets: [EnginePacket]) async { await session.send(packets) }
    public func close() async { await session.close(.application("closed by the server")) }
}
