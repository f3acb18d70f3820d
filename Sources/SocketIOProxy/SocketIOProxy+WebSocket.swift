import NIOCore
import NIOHTTP1
import SocketIOProtocol
import Synchronization
import SocketIOTransport
import TrafficCapture
import TrafficObservation

/// The WebSocket relay's set-up: the upstream dialled during the client's upgrade, the conn it carries, what it reports.
extension SocketIOProxy {
    func dialRelay(_ head: HTTPRequestHead, remote: String, eventLoop: any EventLoop, via route: ProxyRoute, to upstream: ProxyUpstream) async -> RelayDial {
        var headers = ProxyHeaders.endToEnd(head.headers)
        for name in ["Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Extensions"] { headers.remove(name: name) }
        let relayed = RelayedConnection()
        let outcome: WebSocketClient.RelayOutcome
        do {
            outcome = try await WebSocketClient.dialRelay(
                host: upstream.host, port: upstream.port, uri: head.uri, headers: headers,
                eventLoop: eventLoop, maxMessageSize: configuration.maxMessageSize, tls: upstream.tls, observer: relayObserver(relayed)
            )
        } catch {
            // Unreachable: the request goes on as plain HTTP, and the client gets the 502 that says why.
            return .notDialled
        }
        let relayEnd: NIOLoopBound<WebSocketRelayHandler>
        let upstreamHeaders: HTTPHeaders
        switch outcome {
        case .refused(let answer):
            // The client gets the server's own answer, and the capture says the upgrade was refused.
            guard let refusal = try? await answer.get() else { return .notDialled }
            recordRefusedUpgrade(head, refusal, remote: remote, via: route, to: upstream)
            return .refused(
                HTTPResponse(status: refusal.head.status, headers: ProxyHeaders.endToEnd(refusal.head.headers), body: refusal.body, closeConnection: true)
            )
        case .upgraded(let end, let headers):
            (relayEnd, upstreamHeaders) = (end, headers)
        }
        var reply = HTTPHeaders()
        if let subprotocol = upstreamHeaders.first(name: "Sec-WebSocket-Protocol") { reply.add(name: "Sec-WebSocket-Protocol", value: subprotocol) }
        return .relay(DialledRelay(upstream: relayEnd, responseHeaders: reply) { [weak self] channel, head in
            guard let self else { return }
            let remote = channel.remoteDescription
            if let connection = self.webSocketConnection(head, remote: remote, via: route, to: upstream) {
                connection.onWebSocket = true
                relayed.connection.withLock { $0 = connection }
            }
        })
    }

    /// A refused upgrade, on the conn of the session it was to carry; a WebSocket-only client's
    /// gets a conn of its own that ends there, so its session and refusal are in the capture.
    private func recordRefusedUpgrade(_ head: HTTPRequestHead, _ refusal: RefusedUpgrade, remote: String, via route: ProxyRoute, to upstream: ProxyUpstream) {
        guard let engine = EngineRequest.traffic(head.uri, under: configuration.path) else { return }
        let status = refusal.head.status
        let text = refusal.body.isEmpty ? nil : String(decoding: refusal.body.prefix(4096), as: UTF8.self)
        let error = ErrorRecord(
            dir: .serverToClient, code: .upgradeRefused, message: "the server answered the WebSocket upgrade with \(status.code) \(status.reasonPhrase)", raw: text
        )
        if let sid = engine.sid, let known = tracker.connection(sid: sid) {
            emit(.error(error), on: known)
            return
        }
        let connection = tracker.open(engineVersion: engine.version, upstream: upstream, path: engine.path)
        emit(.session(sessionRecord(head, engine: engine, remote: remote, sid: engine.sid, via: route, to: upstream)), on: connection)
        tracker.reportTokens(handshakeTokens(head, engine: engine), on: connection)
        emit(.error(error), on: connection)
        close(connection, by: .server, reason: "the server refused the WebSocket upgrade", waitingForActivity: true)
    }

    /// What the relay reports, turned into records of the conn it carries.
    func relayObserver(_ relayed: RelayedConnection) -> WebSocketRelay.Observer {
        WebSocketRelay.Observer(
            message: { [weak self] side, message in
                guard let self, let connection = relayed.connection.withLock({ $0 }) else { return }
                self.observe(.webSocket(message), dir: Direction(from: side), on: connection)
            },
            oversized: { [weak self] side, size in
                guard let self, let connection = relayed.connection.withLock({ $0 }) else { return }
                let dir = Direction(from: side)
                self.emit(.error(ErrorRecord(dir: dir, code: .messageTooLarge, message: "a websocket message of more than \(size) bytes was relayed but not decoded")), on: connection)
            },
            malformed: { [weak self] side, reason in
                guard let self, let connection = relayed.connection.withLock({ $0 }) else { return }
                let dir = Direction(from: side)
                self.emit(.error(ErrorRecord(dir: dir, code: .webSocketProtocolError, message: "\(reason); relayed, no longer decoded")), on: connection)
            },
            ended: { [weak self] side in
                guard let self, let connection = relayed.connection.withLock({ $0 }) else { return }
                let reason = switch side {
                case .client: "client closed the websocket"
                case .server: "server closed the websocket"
                case .proxy: "fault: the proxy cut the websocket"
                }
                self.close(connection, by: side, reason: reason)
            },
            admit: readGate,
            interception: interception(relayed),
            unfinished: { [weak self] side, received, announced in
                guard let self, let connection = relayed.connection.withLock({ $0 }) else { return }
                let message = "the connection ended inside a message of \(announced) bytes (\(received) of them came)"
                self.emit(.error(ErrorRecord(dir: Direction(from: side), code: .messageCut, message: message)), on: connection)
            }
        )
    }

    /// The conn of a WebSocket: the polling session it upgrades, or a new one.
    func webSocketConnection(_ head: HTTPRequestHead, remote: String, via route: ProxyRoute, to upstream: ProxyUpstream) -> ProxyConnection? {
        guard let engine = EngineRequest.traffic(head.uri, under: configuration.path) else { return nil }
        if let sid = engine.sid, let known = tracker.connection(sid: sid) { return known }
        let fresh = tracker.open(engineVersion: engine.version, upstream: upstream, path: engine.path)
        scheduleTimedDisconnect(fresh)
        emit(.session(sessionRecord(head, engine: engine, remote: remote, sid: engine.sid, via: route, to: upstream)), on: fresh)
        tracker.reportTokens(handshakeTokens(head, engine: engine), on: fresh)
        return fresh
    }
}
