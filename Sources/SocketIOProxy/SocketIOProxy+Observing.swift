import JWTInspection
import NIOHTTP1
import SocketIOProtocol
import SocketIOTransport
import TrafficCapture
import TrafficObservation

/// A token waiting for its inspection.
struct TokenInspection: Sendable {
    let token: String
    let source: TokenSource
    let nsp: String?
    let connection: ProxyConnection
}

/// From frames to records: decoding, the conn's records and close, token inspection.
extension SocketIOProxy {
    /// Decodes a frame of the conn and writes its records; the `seq` of each record it decoded.
    @discardableResult
    func observe(_ frame: TrafficDecoder.Frame, dir: Direction, on connection: ProxyConnection) -> (observed: ConnectionRecorder.Observed, seqs: [Int]) {
        let result = tracker.observe(frame, dir: dir, on: connection)
        follow(result.observed, on: connection)
        return result
    }

    /// What a frame's records call for: the conn's end at a close packet, its tokens inspected.
    func follow(_ observed: ConnectionRecorder.Observed, on connection: ProxyConnection) {
        if let side = observed.closePacketFrom { close(connection, by: side, reason: "close packet") }
        for sighting in observed.tokens { inspect(sighting.token, source: sighting.source, nsp: sighting.nsp, on: connection) }
    }

    /// Records `body` in the conn unless it is closed; returns its `seq` (0 when not written).
    @discardableResult
    func emit(_ body: CaptureRecord.Body, on connection: ProxyConnection) -> Int {
        tracker.emit(body, on: connection) ?? 0
    }

    /// Writes the conn's `close`, once. Unless `waitingForActivity` is false (the proxy stopping,
    /// the idle sweep), it waits for the conn's requests in flight and token inspections, whose
    /// records belong before it.
    func close(_ connection: ProxyConnection, by side: Peer, reason: String, waitingForActivity: Bool = true) {
        tracker.close(connection, CloseRecord(by: side, reason: reason), waitingForActivity: waitingForActivity)
    }

    /// A request or inspection of the conn is done; writes the `close` that waited for it, if any.
    func activityEnded(on connection: ProxyConnection) {
        tracker.end(connection)
    }

    /// A token new to the conn (the recorder tells), inspected.
    func inspect(_ token: String, source: TokenSource, nsp: String?, on connection: ProxyConnection) {
        // Inspection is quick but asynchronous (jwt-kit's key collection is an actor): the relay
        // goes on, and one task inspects the tokens in the order they were seen, so that a
        // handshake's token is never recorded after the CONNECT's that followed it.
        tracker.begin(connection)
        inspections.yield(TokenInspection(token: token, source: source, nsp: nsp, connection: connection))
    }

    /// Inspects the tokens as they come, until the proxy stops (those queued by then included).
    static func runInspections(_ queued: AsyncStream<TokenInspection>, inspector: JWTInspector, tracker: ConnectionTracker) async {
        for await job in queued {
            let report = await inspector.inspect(job.token)
            tracker.emit(.jwt(JWTRecord(report: report, source: job.source, nsp: job.nsp)), on: job.connection)
            tracker.end(job.connection)
        }
    }

    func reportHandshakeTokens(_ head: HTTPRequestHead, engine: EngineRequest, on connection: ProxyConnection) {
        for (token, source) in JWTCandidate.handshakeTokens(query: engine.query, headers: head.headers)
        where tracker.firstSighting(of: token, source: source, nsp: nil, on: connection) {
            inspect(token, source: source, nsp: nil, on: connection)
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
            url: head.uri, path: engine.path, eio: engine.version, transport: engine.transport, sid: sid,
            headers: .object(JSONObject(head.headers.map { .init(key: JSONString($0.name), value: .string($0.value)) })),
            remote: remote, upstream: upstream.description, target: route.target, scheme: route.scheme, tls: tls,
            parser: configuration.parser == .msgpack ? .msgpack : nil, app: configuration.builtInApp
        )
    }
}
