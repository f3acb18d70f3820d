import FaultInjection
import LiveIntervention
import NIOCore
import NIOPosix
import NIOHTTP1
import SocketIOProtocol
import SocketIOTransport
import Synchronization
import TrafficCapture
import TrafficObservation

/// `--fault`: each packet observed before it goes on, the rules' decision carried out on either
/// transport, and the faults recorded. Without rules none of this runs: the relays pass bytes as
/// they come.
extension SocketIOProxy {
    /// What the fault stage decides for Engine.IO packets.
    typealias Decision = InterceptionDecision<EnginePacket>

    /// Observes a frame carrying one Engine.IO packet (its records written), and decides its fate.
    func decide(_ frame: TrafficDecoder.Frame, dir: Direction, wireSize: Int, on connection: ProxyConnection) -> Decision {
        let (observed, seqs) = tracker.observeForDecision(frame, dir: dir, on: connection)
        var fate = Decision()
        var completed = false
        let now = CaptureClock.secondsSince1970()
        let version = connection.engineVersion
        for (body, seq) in zip(observed.decoded, seqs) {
            guard case .packet(let packet) = body else { continue }
            completed = true
            defer {
                if let breakpointsSet, let last = Self.enginePacket(frame, version: version) {
                    intervene(packet, seq: seq, last: last, dir: dir, fate: &fate, on: connection, table: breakpointsSet)
                }
            }
            guard let decision = connection.withFaults({ faults, _ in faults.decide(packet, seq: seq, now: now) }) else { continue }
            for record in decision.records { emit(.fault(record), on: connection) }
            fate.delay = max(fate.delay, decision.delay)
            // Re-encoded with the session's parser: JSON text and attachments, or one msgpack map.
            let codec = { SocketIOPacketCodec(parser: connection.parser, version: SocketIOVersion(engine: connection.engineVersion)) }
            if decision.drop {
                fate.delivery = .drop
            } else if let replacement = decision.replacement {
                fate.delivery = .replace(codec().encode(replacement))
            }
            if let reply = decision.reply { fate.reply += codec().encode(reply) }
            if let cut = decision.disconnect { fate.cut = cut }
        }
        tracker.follow(observed, on: connection)
        if !completed, observed.decoded.isEmpty, observed.hadMessage {
            fate.delivery = .hold
            // A binary packet's frames so far: the gate keeps them with it, should it be held.
            if breakpointsSet != nil, let part = Self.enginePacket(frame, version: version) {
                connection.state.withLock { $0.gate.collect(part, dir: dir) }
            }
        }
        if let (wait, record) = connection.withFaults({ faults, _ in faults.throttle(bytes: wireSize, dir: dir, now: now) }) {
            if let record { emit(.fault(record), on: connection) }
            fate.delay = max(fate.delay, wait)
        }
        return fate
    }

    // MARK: WebSocket

    func interception(_ relayed: RelayedConnection) -> WebSocketRelay.Interception? {
        guard tracker.faults != nil else { return nil }
        return WebSocketRelay.Interception(
            decide: { [weak self] side, message, size in
                guard let self, let connection = relayed.connection.withLock({ $0 }) else { return InterceptionDecision<WebSocketMessage>() }
                let version = connection.engineVersion
                return self.decide(.webSocket(message), dir: Direction(from: side), wireSize: size, on: connection)
                    .map { EngineIOCodec.encode($0, version: version) }
            },
            started: { control in
                relayed.connection.withLock({ $0 })?.state.withLock { state in
                    state.cutWebSocket = { how in control.cut(how) }
                    state.relay = control
                }
            }
        )
    }

    // MARK: Timed disconnects

    /// Starts the conn's timed disconnect, if a rule has one for it.
    func scheduleTimedDisconnect(_ connection: ProxyConnection) {
        guard let (rule, after, how) = connection.withFaults({ faults, _ in faults.timedDisconnect }) ?? nil else { return }
        Task { [weak self] in
            try? await Task.sleep(for: .seconds(after))
            guard let self, !connection.closed else { return }
            self.emit(.fault(FaultRecord(rule: rule.spec, action: .disconnect, detail: "how=\(how.rawValue), \(Self.seconds(after)) after the conn began")), on: connection)
            self.cut(connection, how: how)
        }
    }

    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value)) s" : "\((value * 1000).rounded() / 1000) s"
    }

    /// Ends the conn on whichever transport carries it now.
    func cut(_ connection: ProxyConnection, how: ConnectionCut) {
        if connection.onWebSocket, let cutWebSocket = connection.cutWebSocket {
            cutWebSocket(how)
        } else {
            cutPolling(connection, how: how)
        }
    }

    // MARK: Polling

    /// A polling conn cut: its waiting long-poll and its later requests are answered as by a
    /// server that lost the session (a 400, and the connection closed) or their connections reset,
    /// and the upstream is told the session is over (a close packet of its own). Not an Engine.IO
    /// close packet to the client: that says the server ended the session on purpose, and
    /// python-socketio then does not reconnect (socket.io-client does either way).
    func cutPolling(_ connection: ProxyConnection, how: ConnectionCut) {
        guard let waiter = connection.withFaults({ _, polling in polling.cut(how) }) else { return }
        waiter?.succeed(how == .reset ? .reset : sessionGone(on: connection))
        // The conn's own upstream and path: in forward mode the reverse-mode upstream is nobody's.
        if let sid = connection.sid {
            let (upstream, version) = (connection.upstream, connection.engineVersion)
            let target = connection.path + "?EIO=\(version.rawValue)&transport=polling&sid=\(sid)"
            let body = EngineIOCodec.encodePayload([EnginePacket(.close)], version: version).body
            var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: target)
            head.headers.add(name: "Host", value: "\(upstream.host):\(upstream.port)")
            head.headers.add(name: "Content-Type", value: "text/plain;charset=UTF-8")
            head.headers.add(name: "Content-Length", value: String(body.count))
            _ = upstream.pool.exchange(head: head, body: body, maxResponseSize: 1 << 16, on: nil)
        }
        close(connection, by: .proxy, reason: "fault: disconnect (how=\(how.rawValue))", waitingForActivity: false)
    }

    /// An answer the proxy makes in the server's stead: with CORS headers for the client's page
    /// (a browser refuses a cross-origin answer without them), as the server would have sent.
    func answer(_ status: HTTPResponseStatus, contentType: String, body: [UInt8], on connection: ProxyConnection) -> HTTPResponse {
        var headers: HTTPHeaders = ["Content-Type": contentType]
        if let origin = connection.withFaults({ _, polling in polling.origin }) ?? nil {
            headers.add(name: "Access-Control-Allow-Origin", value: origin)
            headers.add(name: "Access-Control-Allow-Credentials", value: "true")
            headers.add(name: "Vary", value: "Origin")
        }
        return HTTPResponse(status: status, headers: headers, body: body, closeConnection: status != .ok)
    }

    func pollingAnswer(_ packets: [EnginePacket], on connection: ProxyConnection) -> HTTPResponse {
        let body = EngineIOCodec.encodePayload(packets, version: connection.engineVersion).body
        return answer(.ok, contentType: "text/plain; charset=UTF-8", body: body, on: connection)
    }

    /// What a server says of a session it does not know (the JS server's words); the connection
    /// closes after it.
    func sessionGone(on connection: ProxyConnection) -> HTTPResponse {
        answer(.badRequest, contentType: "application/json", body: Array(#"{"code":1,"message":"Session ID unknown"}"#.utf8), on: connection)
    }

    /// Observes a polling body packet by packet (its records written) and decides each; the
    /// body's decision is `.pass` when nothing changes (it goes as it came), else `.replace`.
    func decide(body: [UInt8], dir: Direction, on connection: ProxyConnection) -> Decision {
        let version = connection.engineVersion
        guard let packets = try? EngineIOCodec.decodePayload(body, version: version) else {
            // Not a payload: the error record says so, and it goes on as it came.
            observe(.pollingBody(body), dir: dir, on: connection)
            return Decision()
        }
        var result = Decision()
        var out: [EnginePacket] = []
        var held: [EnginePacket] = []
        var changed = false
        for packet in packets {
            // Its size on the wire matters to a throttle only.
            let size = tracker.faults?.throttles == true ? EngineIOCodec.encodeText(packet, version: version).utf8.count : 0
            let fate = decide(.polledPacket(packet), dir: dir, wireSize: size, on: connection)
            result.delay = max(result.delay, fate.delay)
            result.reply += fate.reply
            if let cut = fate.cut { result.cut = cut }
            switch fate.delivery {
            case .hold:
                held.append(packet)
                continue
            case .pass: out += held + [packet]
            case .drop: changed = true
            case .replace(let replacement):
                out += replacement
                changed = true
            }
            held = []
        }
        // A binary packet whose attachments come in a later body goes on now, undecided.
        out += held
        if changed { result.delivery = .replace(out) }
        return result
    }
}

extension SocketIOProxy {
    /// A known session's poll on the async side (forward mode), through the responder's fault path:
    /// the client's going away (the task cancelled) drops the upstream exchange, as on the loop.
    func respondWithFaults(_ request: HTTPRequest, engine: EngineRequest, via route: ProxyRoute, to upstream: ProxyUpstream) async -> HTTPResponse {
        let responder = PollingResponder(proxy: self, route: route, upstream: upstream)
        let closed = (request.eventLoop ?? MultiThreadedEventLoopGroup.singleton.next()).makePromise(of: Void.self)
        let settled = Mutex(false)
        let settle: @Sendable (Bool) -> Void = { clientLeft in
            guard settled.withLock({ done in defer { done = true }; return !done }) else { return }
            // Failed when the client stayed: nothing then cancels an exchange that has finished
            // (and whose connection may carry another by then).
            if clientLeft { closed.succeed() } else { closed.fail(CancellationError()) }
        }
        defer { settle(false) }
        return await withTaskCancellationHandler {
            do {
                return try await responder.respondWithFaults(to: request, as: engine, clientClosed: closed.futureResult).get()
            } catch {
                return HTTPResponse(status: .badGateway, headers: [:], body: [], closeConnection: true)
            }
        } onCancel: {
            settle(true)
        }
    }
}

extension PollingResponder {
    /// `--fault`'s way for a known session's polls.
    func respondWithFaults(to request: HTTPRequest, as engine: EngineRequest, clientClosed: EventLoopFuture<Void>) -> EventLoopFuture<HTTPResponse> {
        let loop = clientClosed.eventLoop
        let connection = proxy.tracker.beginRequest(sid: engine.sid, engineVersion: engine.version, upstream: upstream, path: engine.path)
        if let origin = request.head.headers.first(name: "Origin") {
            _ = connection.withFaults { _, polling in polling.origin = origin }
        }
        if let cookie = request.head.headers.first(name: "Cookie") {
            connection.state.withLock { $0.cookie = cookie }
        }
        let answer = request.method == .POST
            ? post(request, engine: engine, on: connection, loop: loop, clientClosed: clientClosed)
            : get(request, engine: engine, on: connection, loop: loop, clientClosed: clientClosed)
        return answer.always { _ in proxy.activityEnded(on: connection) }
    }

    private func post(
        _ request: HTTPRequest, engine: EngineRequest, on connection: ProxyConnection, loop: any EventLoop,
        clientClosed: EventLoopFuture<Void>
    ) -> EventLoopFuture<HTTPResponse> {
        if let cut = connection.withFaults({ _, polling in polling.cut }) ?? nil {
            return loop.makeSucceededFuture(cut == .reset ? .reset : proxy.sessionGone(on: connection))
        }
        let fate = proxy.decide(body: request.body, dir: .clientToServer, on: connection)
        deliver(fate.reply, on: connection)
        var body = request.body
        if case .replace(let packets) = fate.delivery {
            guard !packets.isEmpty else {
                // Nothing left to send: the proxy answers as the server would have.
                return after(fate.delay, on: loop) {
                    loop.makeSucceededFuture(proxy.answer(.ok, contentType: "text/html", body: Array("ok".utf8), on: connection))
                }
            }
            body = EngineIOCodec.encodePayload(packets, version: connection.engineVersion).body
        }
        return after(fate.delay, on: loop) { [proxy, route, upstream, body] in
            // After the session's POST before it, the proxy's own included (a held packet let go).
            proxy.inTurn(on: connection, loop: loop) {
                let pending = upstream.pool.exchange(
                    head: ProxyHeaders.upstreamHead(request.head, bodyLength: body.count, engineIO: true), body: body,
                    maxResponseSize: proxy.configuration.maxMessageSize, on: loop
                )
                clientClosed.whenSuccess { pending.cancel() }
                return pending.response
                    .map { response in
                        let answer = proxy.finishExchange(response, request: request, engine: engine, on: connection, via: route, to: upstream)
                        if let cut = fate.cut { proxy.cutPolling(connection, how: cut) }
                        return answer
                    }
                    .flatMapError { error in failed(error, pending: pending, on: connection, loop: loop) }
            }
        }
    }

    private func get(
        _ request: HTTPRequest, engine: EngineRequest, on connection: ProxyConnection, loop: any EventLoop,
        clientClosed: EventLoopFuture<Void>
    ) -> EventLoopFuture<HTTPResponse> {
        let answered = loop.makePromise(of: HTTPResponse.self)
        guard let (start, replaced) = connection.withFaults({ _, polling in polling.clientPolls(answered) }) else {
            answered.succeed(proxy.sessionGone(on: connection))
            return answered.futureResult
        }
        replaced?.succeed(proxy.pollingAnswer([EnginePacket(.noop)], on: connection))
        switch start {
        case .gone(let how):
            answered.succeed(how == .reset ? .reset : proxy.sessionGone(on: connection))
            return answered.futureResult
        case .answer(let packets):
            answered.succeed(proxy.pollingAnswer(packets, on: connection))
            return answered.futureResult
        case .wait(send: false):
            return answered.futureResult
        case .wait(send: true):
            break
        }
        let pending = upstream.pool.exchange(
            head: ProxyHeaders.upstreamHead(request.head, bodyLength: 0, engineIO: true), body: [],
            maxResponseSize: proxy.configuration.maxMessageSize, on: loop
        )
        clientClosed.whenSuccess {
            // The client's long-poll went away; the upstream's is dropped with it unless the proxy
            // already answered the client (the upstream's answer is then kept for the next one).
            if connection.withFaults({ _, polling in polling.waiting.map { $0.futureResult === answered.futureResult } ?? false }) == true {
                pending.cancel()
            }
        }
        pending.response
            .flatMap { [proxy] response -> EventLoopFuture<(HTTPResponse, [EnginePacket]?, ConnectionCut?)> in
                guard response.status == .ok else {
                    let answer = proxy.finishExchange(response, request: request, engine: engine, on: connection, via: route, to: upstream)
                    return loop.makeSucceededFuture((answer, nil, nil))
                }
                let fate = proxy.decide(body: response.body, dir: .serverToClient, on: connection)
                var answer = response
                answer.headers = ProxyHeaders.endToEnd(response.headers)
                var packets: [EnginePacket]?
                if case .replace(let changed) = fate.delivery {
                    packets = changed
                    let binary = response.headers.first(name: "Content-Type")?.contains("octet-stream") ?? false
                    // A long-poll answered with nothing would be a malformed payload: a noop goes instead.
                    let (body, framing) = EngineIOCodec.encodePayload(
                        changed.isEmpty ? [EnginePacket(.noop)] : changed, version: connection.engineVersion, binaryFraming: binary
                    )
                    answer.body = body
                    answer.headers.replaceOrAdd(name: "Content-Type", value: framing == .binary ? "application/octet-stream" : "text/plain; charset=UTF-8")
                } else if let decoded = try? EngineIOCodec.decodePayload(response.body, version: connection.engineVersion) {
                    packets = decoded
                }
                let result = (answer, packets, fate.cut)
                return after(fate.delay, on: loop) { loop.makeSucceededFuture(result) }
            }
            .whenComplete { [proxy] result in
                switch result {
                case .success(let (answer, packets, cut)):
                    let waiter = connection.withFaults({ _, polling in
                        let waiter = polling.upstreamAnswered()
                        if waiter == nil, let packets { polling.keep(packets) }
                        return waiter
                    }) ?? nil
                    waiter?.succeed(answer)
                    // The packet that asked for the cut has been delivered (or kept for the next poll).
                    if let cut { proxy.cutPolling(connection, how: cut) }
                case .failure(let error):
                    let waiter = connection.withFaults({ _, polling in polling.upstreamAnswered() }) ?? nil
                    failed(error, pending: pending, on: connection, loop: loop).whenComplete { answer in
                        waiter?.succeed((try? answer.get()) ?? .reset)
                    }
                }
            }
        return answered.futureResult
    }

    /// Packets the proxy sends the client on its own (a refused CONNECT's answer).
    private func deliver(_ packets: [EnginePacket], on connection: ProxyConnection) {
        guard !packets.isEmpty else { return }
        let waiter = connection.withFaults { _, polling in polling.send(packets) } ?? nil
        waiter?.succeed(proxy.pollingAnswer(packets, on: connection))
    }

    private func failed(_ error: any Error, pending: PendingExchange, on connection: ProxyConnection, loop: any EventLoop) -> EventLoopFuture<HTTPResponse> {
        if pending.isCancelled { return loop.makeSucceededFuture(proxy.clientWentAway(on: connection)) }
        let failure = error as? HTTPClientError ?? HTTPClientError(.closed, request: pending.request, detail: "\(error)")
        return loop.makeFutureWithTask { [proxy, upstream] in await proxy.upstreamFailed(failure, on: connection, to: upstream) }
    }

    private func after<Value: Sendable>(_ delay: Double, on loop: any EventLoop, _ body: @escaping @Sendable () -> EventLoopFuture<Value>) -> EventLoopFuture<Value> {
        guard delay > 0 else { return body() }
        return loop.flatScheduleTask(in: .seconds(clamping: delay), body).futureResult
    }
}
