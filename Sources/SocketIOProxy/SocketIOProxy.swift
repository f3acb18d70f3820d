import JWTInspection
public import NIOCore
public import NIOHTTP1
import SocketIOTransport
import Synchronization
public import TrafficCapture

/// The man in the middle: relays HTTP long-polling and WebSocket traffic between Socket.IO
/// clients and an upstream server, unchanged, and reports what it decodes on the way.
///
/// Decoding only observes: bytes are forwarded as they came, and a frame that fails to decode is
/// reported as an `error` record while it still goes through.
public final class SocketIOProxy: WebSocketRelayDelegate {
    public typealias Sink = @Sendable (_ body: CaptureRecord.Body, _ conn: String?) -> Void

    public let configuration: ProxyConfiguration
    private let sink: Sink
    /// Asked before reading more from clients and upstreams: the capture may be behind.
    private let readGate: ReadGate?
    private let tracker = ConnectionTracker()
    private let inspector: JWTInspector
    private let server = Mutex<HTTPServer?>(nil)
    private let serving = Mutex<Task<Void, Never>?>(nil)
    private let sweeper = Mutex<Task<Void, Never>?>(nil)

    /// - Parameter readGate: when the records' consumer falls behind (see
    ///   ``CaptureQueue/admit(orResume:)``), the proxy stops reading until it catches up.
    public init(configuration: ProxyConfiguration, readGate: ReadGate? = nil, sink: @escaping Sink) {
        self.configuration = configuration
        self.readGate = readGate
        self.sink = sink
        inspector = JWTInspector(key: configuration.jwtKey, leewaySeconds: configuration.jwtLeeway)
    }

    /// Binds and serves in the background; returns the port.
    @discardableResult
    public func start() async throws -> Int {
        let http = try await HTTPServer.bind(
            .init(host: configuration.listenHost, port: configuration.listenPort, maxBodySize: configuration.maxMessageSize),
            delegate: self
        )
        server.withLock { $0 = http }
        serving.withLock { $0 = Task { await http.run(delegate: self) } }
        sweeper.withLock { $0 = Task { [weak self] in await self?.sweepIdleConnections() } }
        return http.port
    }

    /// Stops listening and ends every conn still open with a `close` by the proxy, so a capture
    /// stopped under traffic still closes each conn it opened. A connection whose upgrade or
    /// request was already under way is still relayed, but no longer recorded.
    public func shutdown() async {
        await server.withLock { $0 }?.close()
        serving.withLock { $0 }?.cancel()
        sweeper.withLock { $0 }?.cancel()
        for connection in tracker.stop() {
            close(connection, by: .proxy, reason: "proxy stopped", waitingForActivity: false)
        }
    }

    /// A polling client can vanish without a word, and its upstream then expires the session
    /// unseen: a conn with no traffic for `idleTimeout` gets its `close` record and is dropped, so
    /// every conn ends in the capture and memory does not grow with dead sessions.
    private func sweepIdleConnections() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(max(1, configuration.idleTimeout / 4)))
            let cutoff = CaptureClock.secondsSince1970() - configuration.idleTimeout
            for connection in tracker.idle(since: cutoff) {
                close(connection, by: .proxy, reason: "no traffic for \(Int(configuration.idleTimeout)) s", waitingForActivity: false)
            }
        }
    }

    // MARK: Plain HTTP and long-polling

    public func handle(_ request: HTTPRequest) async -> HTTPResponse {
        let engine = EngineRequest.traffic(request.uri, under: configuration.path)
        // Only GETs and POSTs carry Engine.IO packets; a CORS preflight (OPTIONS) on the same URL is
        // relayed without becoming a conn.
        guard let engine, engine.transport == .polling, request.method == .GET || request.method == .POST else {
            return await relay(request, engine: engine, on: nil)
        }
        await captureCaughtUp()
        let connection = tracker.beginRequest(sid: engine.sid, engineVersion: engine.version)
        if request.method == .POST {
            observe(.pollingBody(request.body), dir: .clientToServer, on: connection)
        }
        let response = await relay(request, engine: engine, on: connection)
        activityEnded(on: connection)
        return response
    }

    private func relay(_ request: HTTPRequest, engine: EngineRequest?, on connection: ConnectionTracker.Connection?) async -> HTTPResponse {
        let response: HTTPResponse
        do {
            response = try await HTTPClient.send(
                host: configuration.upstreamHost, port: configuration.upstreamPort,
                head: upstreamHead(request.head, bodyLength: request.body.count, decoded: engine != nil), body: request.body,
                maxResponseSize: configuration.maxMessageSize
            )
        } catch {
            if Task.isCancelled {
                // The client went away mid-request; its upstream request was dropped with it, and an
                // Engine.IO server ends a session whose request is cut.
                if let connection {
                    emit(.error(ErrorRecord(dir: .clientToServer, code: "proxy.client_aborted", message: "the client closed its connection before the answer")), on: connection)
                    close(connection, by: .client, reason: "client went away mid-request")
                }
                return HTTPResponse(status: .badGateway, headers: [:], body: [], closeConnection: true)
            }
            if let connection {
                emit(.error(ErrorRecord(dir: nil, code: "proxy.upstream_unreachable", message: "\(configuration.upstreamDescription): \(error)")), on: connection)
                close(connection, by: .proxy, reason: "upstream unreachable")
            }
            return HTTPResponse(
                status: .badGateway, headers: ["Content-Type": "text/plain; charset=utf-8"],
                body: Array("siotap proxy: upstream \(configuration.upstreamDescription) unreachable (\(error))\n".utf8),
                closeConnection: true
            )
        }
        if let engine, let connection {
            if engine.sid == nil {
                // A new session: its record comes once the open packet has told the sid. A
                // refused handshake's body is an error message, not a payload.
                let output = response.status == .ok
                    ? decode(.pollingBody(response.body), dir: .serverToClient, on: connection) : TrafficDecoder.Output()
                emit(.session(sessionRecord(request.head, remote: request.remote, transport: .polling, sid: connection.sid)), on: connection)
                reportHandshakeTokens(request.head, on: connection)
                publish(output, on: connection)
            } else if request.method == .GET, response.status == .ok {
                observe(.pollingBody(response.body), dir: .serverToClient, on: connection)
            }
            if response.status != .ok {
                let text = String(decoding: response.body.prefix(200), as: UTF8.self)
                emit(.error(ErrorRecord(dir: .serverToClient, code: "proxy.upstream_status", message: "upstream answered \(response.status.code)", raw: text)), on: connection)
                // The upstream no longer knows the session (or refused the handshake): it is over.
                let upgraded = connection.onWebSocket
                if engine.sid == nil || (response.status == .badRequest && !upgraded) {
                    close(connection, by: .server, reason: "upstream answered \(response.status.code)")
                }
            }
        }
        var relayed = response
        relayed.headers = Self.withoutHopByHop(response.headers)
        // NIO upgrades only a connection's first request; close so a later upgrade comes fresh.
        relayed.closeConnection = true
        return relayed
    }

    /// Waits, without holding a thread, while the capture is behind.
    private func captureCaughtUp() async {
        guard let readGate else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            if readGate({ continuation.resume() }) { continuation.resume() }
        }
    }

    // MARK: WebSocket

    public func dialRelay(_ head: HTTPRequestHead, eventLoop: any EventLoop) async -> DialledRelay? {
        var headers = Self.withoutHopByHop(head.headers)
        for name in ["Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Extensions"] { headers.remove(name: name) }
        let relayed = RelayedConnection()
        guard let outcome = try? await WebSocketClient.dialRelay(
            host: configuration.upstreamHost, port: configuration.upstreamPort, uri: head.uri, headers: headers,
            eventLoop: eventLoop, maxMessageSize: configuration.maxMessageSize, observer: relayObserver(relayed)
        ), case .upgraded(let upstream, let upstreamHeaders) = outcome else {
            // Refused or unreachable: the request goes on as plain HTTP, and the client gets the
            // upstream's answer (or a 502).
            return nil
        }
        var reply = HTTPHeaders()
        if let subprotocol = upstreamHeaders.first(name: "Sec-WebSocket-Protocol") { reply.add(name: "Sec-WebSocket-Protocol", value: subprotocol) }
        return DialledRelay(upstream: upstream, responseHeaders: reply) { [weak self] channel, head in
            guard let self else { return }
            let remote = channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
            if let connection = self.webSocketConnection(head, remote: remote) {
                connection.onWebSocket = true
                relayed.connection.withLock { $0 = connection }
            }
        }
    }

    /// What the relay reports, turned into records of the conn it carries.
    private func relayObserver(_ relayed: RelayedConnection) -> WebSocketRelay.Observer {
        WebSocketRelay.Observer(
            message: { [weak self] side, message in
                guard let self, let connection = relayed.connection.withLock({ $0 }) else { return }
                self.observe(.webSocket(message), dir: side == .client ? .clientToServer : .serverToClient, on: connection)
            },
            oversized: { [weak self] side, size in
                guard let self, let connection = relayed.connection.withLock({ $0 }) else { return }
                let dir: Direction = side == .client ? .clientToServer : .serverToClient
                self.emit(.error(ErrorRecord(dir: dir, code: "proxy.message_too_large", message: "a websocket message of more than \(size) bytes was relayed but not decoded")), on: connection)
            },
            malformed: { [weak self] side, reason in
                guard let self, let connection = relayed.connection.withLock({ $0 }) else { return }
                let dir: Direction = side == .client ? .clientToServer : .serverToClient
                self.emit(.error(ErrorRecord(dir: dir, code: "websocket.protocol_error", message: "\(reason); relayed, no longer decoded")), on: connection)
            },
            ended: { [weak self] side in
                guard let self, let connection = relayed.connection.withLock({ $0 }) else { return }
                self.close(connection, by: side == .client ? .client : .server, reason: side == .client ? "client closed the websocket" : "server closed the websocket")
            },
            admit: readGate
        )
    }

    /// The conn of a WebSocket: the polling session it upgrades, or a new one.
    private func webSocketConnection(_ head: HTTPRequestHead, remote: String) -> ConnectionTracker.Connection? {
        guard let engine = EngineRequest.traffic(head.uri, under: configuration.path) else { return nil }
        if let sid = engine.sid, let known = tracker.connection(sid: sid) { return known }
        let fresh = tracker.open(engineVersion: engine.version)
        emit(.session(sessionRecord(head, remote: remote, transport: .websocket, sid: engine.sid)), on: fresh)
        reportHandshakeTokens(head, on: fresh)
        return fresh
    }

    // MARK: Observing

    private func decode(_ frame: TrafficDecoder.Frame, dir: Direction, on connection: ConnectionTracker.Connection) -> TrafficDecoder.Output {
        tracker.observe(frame, dir: dir, on: connection)
    }

    private func observe(_ frame: TrafficDecoder.Frame, dir: Direction, on connection: ConnectionTracker.Connection) {
        publish(decode(frame, dir: dir, on: connection), on: connection)
    }

    private func publish(_ output: TrafficDecoder.Output, on connection: ConnectionTracker.Connection) {
        for body in output.records {
            emit(body, on: connection)
            if case .engine(let engine) = body, engine.type == "close" {
                close(connection, by: engine.dir == .clientToServer ? .client : .server, reason: "close packet")
            }
        }
        for sighting in output.tokens { report(sighting.token, source: sighting.source, nsp: sighting.nsp, on: connection) }
    }

    private func emit(_ body: CaptureRecord.Body, on connection: ConnectionTracker.Connection) {
        tracker.emitIfOpen(connection) { sink(body, connection.id) }
    }

    /// Writes the conn's `close`, once. Unless `waitingForActivity` is false (the proxy stopping,
    /// the idle sweep), it waits for the conn's requests in flight and token inspections, whose
    /// records belong before it.
    private func close(_ connection: ConnectionTracker.Connection, by side: CloseRecord.Side, reason: String, waitingForActivity: Bool = true) {
        if let record = tracker.close(connection, CloseRecord(by: side, reason: reason), waitingForActivity: waitingForActivity) {
            sink(.close(record), connection.id)
        }
    }

    /// A request or inspection of the conn is done; writes the `close` that waited for it, if any.
    private func activityEnded(on connection: ConnectionTracker.Connection) {
        if let record = tracker.end(connection) { sink(.close(record), connection.id) }
    }

    private func report(_ token: String, source: String, nsp: String?, on connection: ConnectionTracker.Connection) {
        guard tracker.firstSighting(of: token, source: source, nsp: nsp, on: connection) else { return }
        // Inspection is quick but asynchronous (jwt-kit's key collection is an actor); keep the
        // relay moving and write the record when it is done.
        let inspector = self.inspector
        tracker.begin(connection)
        Task {
            let report = await inspector.inspect(token)
            self.emit(.jwt(JWTRecord(report: report, source: source, nsp: nsp)), on: connection)
            self.activityEnded(on: connection)
        }
    }

    private func reportHandshakeTokens(_ head: HTTPRequestHead, on connection: ConnectionTracker.Connection) {
        if let query = head.uri.split(separator: "?", maxSplits: 1).dropFirst().first {
            for (name, value) in QueryString.pairs(query) {
                if let token = JWTCandidate.token(in: value) { report(token, source: "query.\(name)", nsp: nil, on: connection) }
            }
        }
        if let header = head.headers.first(name: "Authorization"), let token = JWTCandidate.token(in: header) {
            report(token, source: "header.authorization", nsp: nil, on: connection)
        }
        for cookieHeader in head.headers[canonicalForm: "Cookie"] {
            for pair in cookieHeader.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { continue }
                let name = parts[0].trimmingPrefix(" ")
                if let token = JWTCandidate.token(in: String(parts[1])) { report(token, source: "cookie.\(name)", nsp: nil, on: connection) }
            }
        }
    }

    private func sessionRecord(_ head: HTTPRequestHead, remote: String, transport: EngineTransport, sid: String?) -> SessionRecord {
        let engine = EngineRequest.traffic(head.uri)
        return SessionRecord(
            url: head.uri, path: engine?.path, eio: engine?.version.rawValue ?? 4, transport: transport, sid: sid,
            headers: .object(JSONObject(head.headers.map { .init(key: JSONString($0.name), value: .string($0.value)) })),
            remote: remote, upstream: configuration.upstreamDescription
        )
    }

    // MARK: Headers

    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "content-length",
    ]

    /// The end-to-end headers: without the hop-by-hop ones, nor those the `Connection` header
    /// names (RFC 9110 §7.6.1), names compared case-insensitively.
    static func withoutHopByHop(_ headers: HTTPHeaders) -> HTTPHeaders {
        var dropped = hopByHop
        for value in headers[canonicalForm: "Connection"] { dropped.insert(value.lowercased()) }
        var kept = HTTPHeaders()
        for (name, value) in headers where !dropped.contains(name.lowercased()) { kept.add(name: name, value: value) }
        return kept
    }

    private func upstreamHead(_ head: HTTPRequestHead, bodyLength: Int, decoded: Bool) -> HTTPRequestHead {
        var headers = Self.withoutHopByHop(head.headers)
        // Engine.IO servers gzip polling bodies of 1 KB and more when asked; not asking keeps the
        // bodies readable (the same choice as dropping the permessage-deflate offer).
        if decoded { headers.remove(name: "Accept-Encoding") }
        headers.add(name: "Connection", value: "close")
        // The body is relayed whole, so its length is known: no chunked re-encoding upstream.
        if bodyLength > 0 || head.headers.contains(name: "Content-Length") {
            headers.add(name: "Content-Length", value: String(bodyLength))
        }
        // The client's Host goes through as it is, so virtual hosts and CORS checks see the same.
        return HTTPRequestHead(version: .http1_1, method: head.method, uri: head.uri, headers: headers)
    }
}

/// The conn a relay carries, known once the client's side is attached.
final class RelayedConnection: Sendable {
    let connection = Mutex<ConnectionTracker.Connection?>(nil)
}
