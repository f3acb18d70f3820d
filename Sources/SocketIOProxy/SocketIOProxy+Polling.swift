import JWTInspection
import NIOCore
import NIOHTTP1
import SocketIOProtocol
import SocketIOTransport
import TrafficCapture
import TrafficObservation

/// Plain HTTP and long-polling: each request relayed whole to the upstream, its Engine.IO bodies
/// observed. A known session's polls are relayed on the client connection's event loop
/// (``PollingResponder``); handshakes, other requests and forward mode's go through ``handle(_:via:to:)``.
/// Both take the same steps: ``beginExchange(_:engine:to:)``, the upstream's answer, then
/// ``finishExchange(_:request:engine:on:via:to:)`` or one of the failures.
extension SocketIOProxy {
    func handle(_ request: HTTPRequest, via route: ProxyRoute, to upstream: ProxyUpstream) async -> HTTPResponse {
        let engine = EngineRequest.traffic(request.uri, under: configuration.path)
        // Only GETs and POSTs carry Engine.IO packets; a CORS preflight (OPTIONS) on the same URL is
        // relayed without becoming a conn.
        guard let engine, engine.transport == .polling, request.method == .GET || request.method == .POST else {
            return await relay(request, engine: engine, on: nil, via: route, to: upstream)
        }
        if tracker.faults != nil, engine.sid != nil {
            // Forward mode's polls (reverse mode's take the responder on the loop): the same fault path.
            return await respondWithFaults(request, engine: engine, via: route, to: upstream)
        }
        await captureCaughtUp()
        let connection = beginExchange(request, engine: engine, to: upstream)
        let response = await relay(request, engine: engine, on: connection, via: route, to: upstream)
        activityEnded(on: connection)
        return response
    }

    func relay(
        _ request: HTTPRequest, engine: EngineRequest?, on connection: ProxyConnection?, via route: ProxyRoute, to upstream: ProxyUpstream
    ) async -> HTTPResponse {
        let response: HTTPResponse
        do {
            response = try await upstream.pool.send(
                head: ProxyHeaders.upstreamHead(request.head, bodyLength: request.body.count, engineIO: engine != nil), body: request.body,
                maxResponseSize: configuration.maxMessageSize, on: request.eventLoop
            )
        } catch {
            if Task.isCancelled { return clientWentAway(on: connection) }
            return await upstreamFailed(error, on: connection, to: upstream)
        }
        return finishExchange(response, request: request, engine: engine, on: connection, via: route, to: upstream)
    }

    /// A polling request's conn (a new one for a handshake), and a POST's packets.
    func beginExchange(_ request: HTTPRequest, engine: EngineRequest, to upstream: ProxyUpstream) -> ProxyConnection {
        let connection = beginExchange(engine, to: upstream)
        if request.method == .POST {
            observe(.pollingBody(request.body), dir: .clientToServer, on: connection)
        }
        return connection
    }

    /// A polling request's conn: a new one for a handshake.
    func beginExchange(_ engine: EngineRequest, to upstream: ProxyUpstream) -> ProxyConnection {
        let connection = tracker.beginRequest(sid: engine.sid, engineVersion: engine.version, upstream: upstream, path: engine.path)
        if engine.sid == nil { scheduleTimedDisconnect(connection) }
        return connection
    }

    /// The upstream's answer observed, and made the client's.
    func finishExchange(
        _ response: HTTPResponse, request: HTTPRequest, engine: EngineRequest?, on connection: ProxyConnection?,
        via route: ProxyRoute, to upstream: ProxyUpstream
    ) -> HTTPResponse {
        if let engine, let connection {
            observeAnswer(
                status: response.status, headers: response.headers.map { ($0.name, $0.value) }, body: response.body, to: engine.sid == nil ? (request.head, request.remote) : nil, engine: engine,
                method: request.method, on: connection, via: route, upstream: upstream
            )
        }
        var relayed = response
        relayed.headers = ProxyHeaders.endToEnd(response.headers)
        return relayed
    }

    /// A polling answer's packets (a handshake's: the session it opened); an answer other than
    /// 200 ends the session it was for when it says the server no longer knows it.
    /// `handshake`: the request's head and the client's address, for a handshake.
    func observeAnswer(
        status: HTTPResponseStatus, headers: [(name: String, value: String)], body: [UInt8], to handshake: (head: HTTPRequestHead, remote: String)?,
        engine: EngineRequest, method: HTTPMethod,
        on connection: ProxyConnection, via route: ProxyRoute, upstream: ProxyUpstream
    ) {
        if let (head, remote) = handshake {
            // A new session: its record comes with the sid the open packet tells. A refused
            // handshake's body is an error message, not a payload.
            var session = sessionRecord(head, engine: engine, remote: remote, sid: nil, via: route, to: upstream)
            session.answerHeaders = .object(JSONObject(headers.map { .init(key: JSONString($0.name), value: .string($0.value)) }))
            tracker.observeHandshake(status == .ok ? .pollingBody(body) : nil, session: session, tokens: handshakeTokens(head, engine: engine), on: connection)
        } else if method == .GET, status == .ok {
            observe(.pollingBody(body), dir: .serverToClient, on: connection)
        }
        if status != .ok {
            let text = String(decoding: body.prefix(200), as: UTF8.self)
            emit(.error(ErrorRecord(dir: .serverToClient, code: .upstreamStatus, message: "the server answered \(status.code)", raw: text)), on: connection)
            // The upstream no longer knows the session (or refused the handshake): it is over.
            let upgraded = connection.onWebSocket
            if engine.sid == nil || (status == .badRequest && !upgraded) {
                close(connection, by: .server, reason: "the server answered \(status.code)")
            }
        }
    }

    /// A page's CORS preflight whose answer does not allow its origin: the browser goes no
    /// further, so it is all the capture can show of the attempt. A conn of its own (its
    /// `session` record with the answer's headers, closed by the server); allowed ones are not
    /// recorded.
    func observePreflight(
        _ head: HTTPRequestHead, answer status: HTTPResponseStatus, headers: [(name: String, value: String)], engine: EngineRequest, remote: String,
        via route: ProxyRoute, to upstream: ProxyUpstream
    ) {
        guard let origin = head.headers.first(name: "Origin") else { return }
        let allowed = headers.last { $0.name.lowercased() == "access-control-allow-origin" }?.value
        guard allowed != origin, allowed != "*" else { return }
        let connection = tracker.open(engineVersion: engine.version, upstream: upstream, path: engine.path)
        var session = sessionRecord(head, engine: engine, remote: remote, sid: nil, via: route, to: upstream)
        session.answerHeaders = .object(JSONObject(headers.map { .init(key: JSONString($0.name), value: .string($0.value)) }))
        emit(.session(session), on: connection)
        close(connection, by: .server, reason: "the CORS preflight (OPTIONS) was answered \(status.code) without allowing origin \(origin)")
    }

    /// The client went away mid-request; its upstream request was dropped with it, and an
    /// Engine.IO server ends a session whose request is cut. That is how clients leave (a page
    /// closed, a disconnect that drops its long-poll): the conn's close, not an error.
    func clientWentAway(on connection: ProxyConnection?) -> HTTPResponse {
        if let connection { close(connection, by: .client, reason: "client went away mid-request") }
        return HTTPResponse(status: .badGateway, headers: [:], body: [], closeConnection: true)
    }

    /// No answer from the upstream: recorded, and a 502 saying why.
    func upstreamFailed(_ error: HTTPClientError, on connection: ProxyConnection?, to upstream: ProxyUpstream) async -> HTTPResponse {
        var record = ErrorRecord(dir: nil, code: .upstreamUnreachable, message: "\(upstream.description): \(error)")
        if let tls = upstream.tls, error.code == .tls {
            let reason = await tls.diagnose(host: upstream.host, port: upstream.port)
            record = ErrorRecord(dir: nil, code: .upstreamTLS, message: "\(upstream.description): \(reason)")
        }
        if let connection {
            emit(.error(record), on: connection)
            close(connection, by: .proxy, reason: record.code == .upstreamTLS ? "upstream TLS failed" : "upstream unreachable")
        } else if record.code == .upstreamTLS {
            // A WebSocket's first request has no conn yet: the failure is still recorded.
            tracker.emit(.error(record), on: nil)
        }
        return HTTPResponse(
            status: .badGateway, headers: ["Content-Type": "text/plain; charset=utf-8"],
            body: Array("siotap proxy: upstream \(record.message)\n".utf8),
            closeConnection: true
        )
    }

    /// Waits, without holding a thread, while the capture is behind.
    func captureCaughtUp() async {
        guard let readGate else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            if readGate({ continuation.resume() }) { continuation.resume() }
        }
    }
}

/// With `--fault`, a known session's polls, answered on the client connection's event loop with
/// each packet decided before it goes on (see ``respondWithFaults(to:as:clientClosed:)``).
struct PollingResponder {
    let proxy: SocketIOProxy
    let route: ProxyRoute
    let upstream: ProxyUpstream
}
