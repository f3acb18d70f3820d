import NIOHTTP1
public import SocketIOProtocol
import SocketIOTransport
import Synchronization

/// One Engine.IO session as a client, either generation: the handshake over WebSocket or polling,
/// the upgrade from polling (`2probe`, `3probe`, `5`), heartbeats (answering pings in v4, sending
/// them in v3), and packets in and out over whichever transport is current. ``packets`` gives
/// every message and noop packet from the server, in order, and ends with the session.
/// ``SocketIOClient`` is the Socket.IO layer on top.
public final class EngineIOClient: Sendable {
    public let host: String
    public let port: Int
    public let path: String
    public let engineVersion: EngineIOVersion
    public let query: String
    /// TLS to the server (`https://`, `wss://`); nil: plain.
    public let tls: TLSClientSettings?
    /// The server's packets other than the handshake, heartbeats and the upgrade's.
    public let packets: AsyncStream<EnginePacket>
    private let packetContinuation: AsyncStream<EnginePacket>.Continuation

    private enum Transport {
        case none
        case polling(PollingTransport)
        case webSocket(WebSocketConnection)
    }

    private struct State {
        var transport: Transport = .none
        var probeAnswered: CheckedContinuation<Bool, Never>?
        var closed = false
        /// The upgrade asked polling to stop: no new GET is made.
        var pollingPaused = false
        /// The polling loop has stopped (paused or over), and who waits for that.
        var pollingStopped = false
        var pollingDrained: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())
    /// The readers and heartbeats; cancelled when the session ends.
    private let tasks = Mutex<[Task<Void, Never>]>([])

    public init(
        host: String, port: Int, path: String = "/socket.io/", engineVersion: EngineIOVersion = .v4, query: String = "", tls: TLSClientSettings? = nil
    ) {
        self.tls = tls
        self.host = host
        self.port = port
        self.path = path
        self.engineVersion = engineVersion
        self.query = query
        (packets, packetContinuation) = AsyncStream<EnginePacket>.makeStream()
    }

    /// Opens the session and returns the server's handshake. Failures of the requests beneath
    /// are ``HTTPClientError``s; an answer that is not a handshake, or an upgrade whose probe is
    /// never answered, is a ``SocketIOClient/ClientError``.
    @discardableResult
    public func open(_ plan: SocketIOClient.TransportPlan = .websocket, headers: [(String, String)] = []) async throws -> EngineHandshake {
        let handshake: EngineHandshake
        switch plan.start {
        case .polling:
            handshake = try await openPolling(headers: headers)
            if plan.upgrades, handshake.upgrades.contains("websocket") { try await upgrade(sid: handshake.sid, headers: headers) }
        case .websocket:
            handshake = try await openWebSocket(headers: headers)
        }
        if engineVersion == .v3 { startPinging(interval: handshake.pingInterval) }
        return handshake
    }

    /// Sends packets over the current transport, in order (polling sends go one after the other).
    public func send(_ packets: [EnginePacket]) {
        switch state.withLock({ $0.transport }) {
        case .polling(let polling): polling.post(EngineIOCodec.encodePayload(packets, version: engineVersion).body)
        // One group: a packet's attachments must not be split by another thread's packet.
        case .webSocket(let socket): socket.send(packets.map { EngineIOCodec.encode($0, version: engineVersion) })
        case .none: break
        }
    }

    /// Ends the session: a close packet, then the transport's end.
    public func close() {
        let transport = state.withLock { $0.transport }
        send([EnginePacket(.close)])
        switch transport {
        case .webSocket(let socket):
            socket.close()
        case .polling(let polling):
            Task {
                await polling.postsSent()
                finish()
            }
        case .none:
            finish()
        }
    }

    // MARK: Transports

    private func uri(_ transport: EngineTransport, sid: String? = nil) -> String {
        var uri = "\(path)?EIO=\(engineVersion.rawValue)&transport=\(transport.rawValue)"
        if !query.isEmpty { uri += "&" + query }
        if let sid { uri += "&sid=\(sid)" }
        return uri
    }

    private func openWebSocket(headers: [(String, String)]) async throws -> EngineHandshake {
        let uri = uri(.websocket)
        let socket = try await connectWebSocket(uri: uri, headers: headers)
        state.withLock { $0.transport = .webSocket(socket) }
        let (opened, openedContinuation) = AsyncStream<EngineHandshake>.makeStream()
        start {
            for await message in socket.messages {
                guard let packet = try? EngineIOCodec.decode(message, version: self.engineVersion) else { continue }
                if packet.type == .open, let text = packet.text, let handshake = try? EngineHandshake(json: text) {
                    openedContinuation.yield(handshake)
                    openedContinuation.finish()
                } else {
                    self.receive(packet)
                }
            }
            openedContinuation.finish()
            self.finish()
        }
        for await handshake in opened { return handshake }
        throw SocketIOClient.ClientError(.badHandshake, HTTPClient.requestLine("GET", "ws", host: host, port: port, target: uri) + ": the connection ended before the open packet")
    }

    private func openPolling(headers: [(String, String)]) async throws -> EngineHandshake {
        let polling = PollingTransport(host: host, port: port, uri: uri(.polling), engineVersion: engineVersion, tls: tls)
        let (handshake, rest) = try await polling.handshake(headers: headers)
        polling.sid = handshake.sid
        state.withLock { $0.transport = .polling(polling) }
        for packet in rest { receive(packet) }
        start {
            while self.state.withLock({ !$0.closed && !$0.pollingPaused }), let packets = await polling.poll() {
                let replaced = self.state.withLock { state in
                    if case .polling(let current) = state.transport { current !== polling } else { true }
                }
                for packet in packets {
                    // A transport that has been replaced ends nothing: engine.io answers a GET still
                    // out when the upgrade completes with a close packet for that transport alone.
                    if replaced, packet.type == .close { continue }
                    self.receive(packet)
                }
            }
            let (paused, waiting) = self.state.withLock { state in
                state.pollingStopped = true
                defer { state.pollingDrained = nil }
                return (state.pollingPaused, state.pollingDrained)
            }
            waiting?.resume()
            // The session is over, unless it is moving to a WebSocket (whose reader carries on).
            if !paused, case .polling(let current) = self.state.withLock({ $0.transport }), current === polling { self.finish() }
        }
        return handshake
    }

    /// Stops polling as engine.io-client pauses it before an upgrade: no new GET, and returns
    /// once the GET under way has been answered (the server releases it with a noop when the
    /// probe comes), or after `limit` for a server that never does.
    private func pausePolling(limit: Duration = .seconds(5)) async {
        let waiter = Task {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let stopped = state.withLock { state in
                    state.pollingPaused = true
                    if !state.pollingStopped { state.pollingDrained = continuation }
                    return state.pollingStopped
                }
                if stopped { continuation.resume() }
            }
        }
        let timer = Task {
            try? await Task.sleep(for: limit)
            guard !Task.isCancelled else { return }
            state.withLock { state in
                defer { state.pollingDrained = nil }
                return state.pollingDrained
            }?.resume()
        }
        await waiter.value
        timer.cancel()
    }

    private func connectWebSocket(uri: String, headers: [(String, String)]) async throws -> WebSocketConnection {
        let (socket, _, run) = try await WebSocketClient.connect(
            host: host, port: port, uri: uri, headers: HTTPHeaders(headers.map { ($0.0, $0.1) }), maxMessageSize: 64 << 20, tls: tls
        )
        start { await run() }
        return socket
    }

    /// The probe over a new WebSocket; then, as engine.io-client does, polling paused (no new GET,
    /// the one under way answered, the POSTs under way gone) before `5`. engine.io answers a GET
    /// still out when `5` comes with a close packet, which a client that had not waited took for
    /// the session's end.
    private func upgrade(sid: String, headers: [(String, String)]) async throws {
        let uri = uri(.websocket, sid: sid)
        let socket = try await connectWebSocket(uri: uri, headers: headers)
        start {
            for await message in socket.messages {
                guard let packet = try? EngineIOCodec.decode(message, version: self.engineVersion) else { continue }
                if packet.type == .pong, packet.text == "probe" {
                    self.state.withLock { state in
                        defer { state.probeAnswered = nil }
                        return state.probeAnswered
                    }?.resume(returning: true)
                } else {
                    self.receive(packet)
                }
            }
            self.finish()
        }
        let answered = await withCheckedContinuation { continuation in
            state.withLock { $0.probeAnswered = continuation }
            socket.send(EngineIOCodec.encode(EnginePacket(.ping, .text("probe")), version: engineVersion))
        }
        guard answered, case .polling(let polling) = state.withLock({ $0.transport }) else {
            throw SocketIOClient.ClientError(.upgradeFailed, HTTPClient.requestLine("GET", "ws", host: host, port: port, target: uri) + ": the server never answered the upgrade's probe")
        }
        await pausePolling()
        await polling.postsSent()
        state.withLock { $0.transport = .webSocket(socket) }
        socket.send(EngineIOCodec.encode(EnginePacket(.upgrade), version: engineVersion))
    }

    // MARK: Packets in

    private func receive(_ packet: EnginePacket) {
        switch packet.type {
        case .ping:
            send([EnginePacket(.pong, packet.payload)])
        case .close:
            close()
        case .message, .noop:
            packetContinuation.yield(packet)
        default:
            break
        }
    }

    private func startPinging(interval: Int) {
        start {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(interval))
                guard !self.state.withLock({ $0.closed }) else { return }
                self.send([EnginePacket(.ping)])
            }
        }
    }

    private func start(_ work: @escaping @Sendable () async -> Void) {
        let task = Task { await work() }
        let closed = tasks.withLock { tasks in
            tasks.append(task)
            return state.withLock { $0.closed }
        }
        if closed { task.cancel() }
    }

    private func finish() {
        let (probe, transport, wasClosed) = state.withLock { state in
            defer {
                state.closed = true
                state.probeAnswered = nil
            }
            return (state.probeAnswered, state.transport, state.closed)
        }
        guard !wasClosed else { return }
        probe?.resume(returning: false)
        if case .polling(let polling) = transport { polling.close() }
        packetContinuation.finish()
        for task in tasks.withLock({ $0 }) { task.cancel() }
    }
}

/// Long-polling to one session: GETs one at a time, POSTs one after the other, on kept-alive
/// connections (a long-poll and a POST may be in flight at once).
final class PollingTransport: Sendable {
    private let http: HTTPConnectionPool
    private let baseURI: String
    private let engineVersion: EngineIOVersion
    private let sidBox = Mutex<String?>(nil)
    /// The last POST: the next waits for it, so packets keep their order.
    private let lastPost = Mutex<Task<Void, Never>?>(nil)

    init(host: String, port: Int, uri: String, engineVersion: EngineIOVersion, tls: TLSClientSettings?) {
        http = HTTPConnectionPool(host: host, port: port, maxIdle: 2, tls: tls)
        baseURI = uri
        self.engineVersion = engineVersion
    }

    var sid: String? {
        get { sidBox.withLock { $0 } }
        set { sidBox.withLock { $0 = newValue } }
    }

    private func head(_ method: HTTPMethod, length: Int = 0) -> HTTPRequestHead {
        var uri = baseURI
        if let sid { uri += "&sid=\(sid)" }
        var headers: HTTPHeaders = ["Host": HTTPClient.hostHeader(host: http.host, port: http.port)]
        if method == .POST {
            headers.add(name: "Content-Type", value: "text/plain;charset=UTF-8")
            headers.add(name: "Content-Length", value: String(length))
        }
        return HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: headers)
    }

    /// The first GET: the open packet, and any packets that came with it.
    func handshake(headers: [(String, String)]) async throws -> (EngineHandshake, [EnginePacket]) {
        var head = head(.GET)
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        let response = try await http.send(head: head, body: [])
        let request = HTTPClient.requestLine("GET", "http", host: http.host, port: http.port, target: head.uri)
        guard response.status == .ok else {
            throw HTTPClientError.unexpected(HTTPResponseHead(version: .http1_1, status: response.status, headers: response.headers), body: response.body, request: request)
        }
        guard let packets = try? EngineIOCodec.decodePayload(response.body, version: engineVersion),
            let open = packets.first, open.type == .open, let text = open.text, let handshake = try? EngineHandshake(json: text)
        else {
            throw SocketIOClient.ClientError(.badHandshake, "\(request): the answer is not an Engine.IO open packet: \(HTTPClientError.bodyStart(response.body))")
        }
        return (handshake, Array(packets.dropFirst()))
    }

    /// One long-poll; `nil` once the session is over (or the server refuses the sid).
    func poll() async -> [EnginePacket]? {
        guard let response = try? await http.send(head: head(.GET), body: []), response.status == .ok else { return nil }
        return try? EngineIOCodec.decodePayload(response.body, version: engineVersion)
    }

    func post(_ body: [UInt8]) {
        let head = head(.POST, length: body.count)
        lastPost.withLock { last in
            let previous = last
            last = Task {
                await previous?.value
                _ = try? await self.http.send(head: head, body: body)
            }
        }
    }

    /// Returns once every POST made so far has been answered.
    func postsSent() async {
        await lastPost.withLock { $0 }?.value
    }

    func close() {
        http.close()
    }
}
