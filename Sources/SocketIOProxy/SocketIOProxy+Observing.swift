import JWTInspection
import NIOHTTP1
import SocketIOProtocol
import SocketIOTransport
import TrafficCapture

/// From frames to records: decoding, the conn's records and close, token inspection.
extension SocketIOProxy {
    func decode(_ frame: TrafficDecoder.Frame, dir: Direction, on connection: ConnectionTracker.Connection) -> TrafficDecoder.Output {
        tracker.observe(frame, dir: dir, on: connection)
    }

    func observe(_ frame: TrafficDecoder.Frame, dir: Direction, on connection: ConnectionTracker.Connection) {
        publish(decode(frame, dir: dir, on: connection), on: connection)
    }

    func publish(_ output: TrafficDecoder.Output, on connection: ConnectionTracker.Connection) {
        for body in output.records {
            emit(body, on: connection)
            if case .engine(let engine) = body, engine.type == .close {
                close(connection, by: engine.dir == .clientToServer ? .client : .server, reason: "close packet")
            }
        }
        for sighting in output.tokens { report(sighting.token, source: sighting.source, nsp: sighting.nsp, on: connection) }
    }

    /// Records `body` in the conn unless it is closed; returns its `seq` (0 when not written).
    @discardableResult
    func emit(_ body: CaptureRecord.Body, on connection: ConnectionTracker.Connection) -> Int {
        tracker.emit(body, on: connection) ?? 0
    }

    /// Writes the conn's `close`, once. Unless `waitingForActivity` is false (the proxy stopping,
    /// the idle sweep), it waits for the conn's requests in flight and token inspections, whose
    /// records belong before it.
    func close(_ connection: ConnectionTracker.Connection, by side: Peer, reason: String, waitingForActivity: Bool = true) {
        if let record = tracker.close(connection, CloseRecord(by: side, reason: reason), waitingForActivity: waitingForActivity) {
            _ = sink(.close(record), connection.id)
        }
    }

    /// A request or inspection of the conn is done; writes the `close` that waited for it, if any.
    func activityEnded(on connection: ConnectionTracker.Connection) {
        if let record = tracker.end(connection) { _ = sink(.close(record), connection.id) }
    }

    func report(_ token: String, source: String, nsp: String?, on connection: ConnectionTracker.Connection) {
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

    func reportHandshakeTokens(_ head: HTTPRequestHead, engine: EngineRequest, on connection: ConnectionTracker.Connection) {
        for (token, source) in JWTCandidate.handshakeTokens(query: engine.query, headers: head.headers) {
            report(token, source: source, nsp: nil, on: connection)
        }
    }

    /// The session a handshake request opens (its transport is the request's).
    func sessionRecord(
        _ head: HTTPRequestHead, engine: EngineRequest, remote: String, sid: String?, via route: ProxyRoute, to upstream: ProxyUpstream
    ) -> SessionRecord {
        let client = route.clientTLS
        let certificate = upstream.certificate
        let tls = client == nil && certificate == nil
            ? nil : SessionTLS(version: client?.version, cipher: client?.cipher, sni: client?.serverName, upstreamCertificate: certificate)
        return SessionRecord(
            url: head.uri, path: engine.path, eio: engine.version.rawValue, transport: engine.transport, sid: sid,
            headers: .object(JSONObject(head.headers.map { .init(key: JSONString($0.name), value: .string($0.value)) })),
            remote: remote, upstream: upstream.description, target: route.target, scheme: route.scheme, tls: tls,
            parser: configuration.parser == .msgpack ? .msgpack : nil
        )
    }
}
