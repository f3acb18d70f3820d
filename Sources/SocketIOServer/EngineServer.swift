import NIOHTTP1
import SocketIOProtocol
import SocketIOTransport
import Synchronization

/// The Engine.IO server: the handshake, HTTP long-polling, WebSocket sessions and upgrades, and
/// the JS server's error answers. Each new session is handed to ``onSession``.
final class EngineServer: HTTPServerDelegate {
    let configuration: EngineConfiguration
    private let sessions = Mutex<[String: EngineSession]>([:])
    private let onSession: @Sendable (EngineSession) async -> Void

    init(configuration: EngineConfiguration, onSession: @escaping @Sendable (EngineSession) async -> Void) {
        self.configuration = configuration
        self.onSession = onSession
    }

    var sessionCount: Int { sessions.withLock { $0.count } }

    func session(_ sid: String) -> EngineSession? { sessions.withLock { $0[sid] } }

    func closeAll(reason: EngineCloseReason) async {
        for session in sessions.withLock({ Array($0.values) }) { await session.close(reason, notifyClient: false) }
    }

    // MARK: Request parsing

    private enum Parsed {
        case engine(EngineRequest)
        case notEngine
        case refused(EngineErrorCode)
    }

    /// Whether `uri` is under this server's path.
    func serves(uri: String) -> Bool { EngineRequest.path(of: uri) == configuration.path }

    private func parse(uri: String) -> Parsed {
        guard serves(uri: uri) else { return .notEngine }
        do {
            let request = try EngineRequest(target: uri)
            guard request.version == .v4 || configuration.allowEIO3 else { return .refused(.unsupportedProtocolVersion) }
            return .engine(request)
        } catch .unsupportedVersion {
            return .refused(.unsupportedProtocolVersion)
        } catch {
            return .refused(.unknownTransport)
        }
    }

    // MARK: HTTPServerDelegate

    func shouldUpgrade(_ head: HTTPRequestHead) async -> HTTPHeaders? {
        guard case .engine(let request) = parse(uri: head.uri), request.transport == .websocket else { return nil }
        if let sid = request.sid {
            guard let session = session(sid), session.version == request.version, await session.transport == .polling else { return nil }
        }
        return HTTPHeaders()
    }

    func handleWebSocket(_ connection: WebSocketConnection, head: HTTPRequestHead) async {
        guard case .engine(let request) = parse(uri: head.uri) else { return }
        if let sid = request.sid {
            guard let session = session(sid) else { return }
            await session.attach(connection, upgrading: true)
            return
        }
        let session = makeSession(request, transport: .websocket, headers: head.headers, remote: connection.remote)
        connection.send(.text(EngineIOCodec.encodeText(EnginePacket(.open, .text(session.handshake.json)), version: request.version)))
        await session.start(webSocket: connection)
        Task { await onSession(session) }
        await session.attach(connection, upgrading: false)
    }

    func handle(_ request: HTTPRequest) async -> HTTPResponse {
        var response = await route(request)
        addCORS(&response, request: request)
        return response
    }

    private func route(_ request: HTTPRequest) async -> HTTPResponse {
        let parsed = parse(uri: request.uri)
        if request.method == .OPTIONS, configuration.corsOrigins != nil, case .engine = parsed {
            return HTTPResponse(status: .noContent)
        }
        switch parsed {
        case .notEngine:
            return HTTPResponse(status: .notFound, contentType: "text/plain", body: "Not Found")
        case .refused(let code):
            return Self.error(code)
        case .engine(let engineRequest):
            if engineRequest.transport == .websocket {
                // A WebSocket request that was not upgraded: no Upgrade header, or an unknown sid.
                if let sid = engineRequest.sid, session(sid) == nil { return Self.error(.unknownSid) }
                return Self.error(.badRequest)
            }
            guard let sid = engineRequest.sid else {
                guard request.method == .GET else { return Self.error(.badHandshakeMethod) }
                return await handshake(engineRequest, request: request)
            }
            guard let session = session(sid), session.version == engineRequest.version else { return Self.error(.unknownSid) }
            switch request.method {
            case .GET:
                switch await session.poll() {
                case .refused(let code): return Self.error(code)
                case .packets(let packets): return payloadResponse(packets, session: session)
                }
            case .POST:
                if session.version == .v4, request.headers.first(name: "Content-Type")?.lowercased().hasPrefix("application/octet-stream") == true {
                    await session.close(.binaryPost, notifyClient: true)
                    return Self.error(.badRequest)
                }
                if let code = await session.post(request.body) { return Self.error(code) }
                return HTTPResponse(status: .ok, contentType: "text/html", body: "ok")
            default:
                return Self.error(.badRequest)
            }
        }
    }

    private func handshake(_ engineRequest: EngineRequest, request: HTTPRequest) async -> HTTPResponse {
        let session = makeSession(engineRequest, transport: .polling, headers: request.headers, remote: request.remote)
        let open = EnginePacket(.open, .text(session.handshake.json))
        await session.start(webSocket: nil)
        await onSession(session)
        // socket.io 2.x sends what the Socket.IO layer queued at once (`40` for `/`) with the open packet.
        var packets = [open]
        if case .packets(let queued) = await session.takeQueued() { packets += queued }
        var response = payloadResponse(packets, session: session)
        if configuration.cookie {
            response.headers.add(name: "Set-Cookie", value: "io=\(session.sid); Path=/; HttpOnly; SameSite=Lax")
        }
        return response
    }

    private func makeSession(_ request: EngineRequest, transport: EngineTransport, headers: HTTPHeaders, remote: String) -> EngineSession {
        let sid = SessionID.make()
        let session = EngineSession(
            sid: sid, version: request.version, transport: transport,
            binaryPayloads: request.version == .v3 && !request.base64, query: request.query.map { ($0.name, $0.value) },
            headers: headers.map { ($0.name, $0.value) }, remote: remote, configuration: configuration,
            onEnd: { [weak self] sid in self?.sessions.withLock { _ = $0.removeValue(forKey: sid) } }
        )
        sessions.withLock { $0[sid] = session }
        return session
    }

    private func payloadResponse(_ packets: [EnginePacket], session: EngineSession) -> HTTPResponse {
        let (body, framing) = EngineIOCodec.encodePayload(packets, version: session.version, binaryFraming: session.binaryPayloads)
        let contentType = framing == .binary ? "application/octet-stream" : "text/plain; charset=UTF-8"
        return HTTPResponse(status: .ok, headers: ["Content-Type": contentType, "Cache-Control": "no-store"], body: body)
    }

    private func addCORS(_ response: inout HTTPResponse, request: HTTPRequest) {
        guard let origins = configuration.corsOrigins else { return }
        let origin = request.headers.first(name: "Origin")
        if origins.contains("*") {
            response.headers.replaceOrAdd(name: "Access-Control-Allow-Origin", value: origin ?? "*")
        } else if let origin, origins.contains(origin) {
            response.headers.replaceOrAdd(name: "Access-Control-Allow-Origin", value: origin)
        } else {
            return
        }
        if origin != nil { response.headers.replaceOrAdd(name: "Access-Control-Allow-Credentials", value: "true") }
        response.headers.replaceOrAdd(name: "Vary", value: "Origin")
        if request.method == .OPTIONS {
            response.headers.replaceOrAdd(name: "Access-Control-Allow-Methods", value: "GET,POST,OPTIONS")
            response.headers.replaceOrAdd(
                name: "Access-Control-Allow-Headers",
                value: request.headers.first(name: "Access-Control-Request-Headers") ?? "Content-Type"
            )
        }
    }

    static func error(_ code: EngineErrorCode) -> HTTPResponse {
        let body = JSONValue.object(["code": .number(code.rawValue), "message": .string(code.message)]).jsonText
        return HTTPResponse(status: code == .forbidden ? .forbidden : .badRequest, headers: ["Content-Type": "application/json"], body: Array(body.utf8))
    }
}

/// Sends each request to the Engine.IO server of its path.
struct EngineRouter: HTTPServerDelegate {
    let engines: [EngineServer]

    private func engine(for uri: String) -> EngineServer { engines.first { $0.serves(uri: uri) } ?? engines[0] }

    func shouldUpgrade(_ head: HTTPRequestHead) async -> HTTPHeaders? { await engine(for: head.uri).shouldUpgrade(head) }
    func handleWebSocket(_ connection: WebSocketConnection, head: HTTPRequestHead) async {
        await engine(for: head.uri).handleWebSocket(connection, head: head)
    }
    func handle(_ request: HTTPRequest) async -> HTTPResponse { await engine(for: request.uri).handle(request) }
}

/// Session and socket ids: 20 URL-safe characters, like the JS server's base64id.
enum SessionID {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

    static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        return String((0..<20).map { _ in alphabet[Int(generator.next() % 64)] })
    }
}
