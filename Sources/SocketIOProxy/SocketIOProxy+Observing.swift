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

/// From frames to records (the tracker's, in order): decoding, the conn's records and close,
/// token inspection.
extension SocketIOProxy {
    /// A frame of the conn: its records, and what they call for (see ``ConnectionTracker/observe(_:dir:on:)``).
    func observe(_ frame: TrafficDecoder.Frame, dir: Direction, on connection: ProxyConnection) {
        tracker.observe(frame, dir: dir, on: connection)
    }

    /// Records `body` in the conn unless it is closed.
    func emit(_ body: CaptureRecord.Body, on connection: ProxyConnection) {
        tracker.emit(body, on: connection)
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

    /// Inspects the tokens as they come, until the proxy stops (those queued by then included).
    /// Inspection is quick but asynchronous (jwt-kit's key collection is an actor): the relay goes
    /// on, and one task inspects the tokens in the order they were seen, so that a handshake's
    /// token is never recorded after the CONNECT's that followed it.
    static func runInspections(_ queued: AsyncStream<TokenInspection>, inspector: JWTInspector, tracker: ConnectionTracker) async {
        for await job in queued {
            let report = await inspector.inspect(job.token)
            tracker.emit(.jwt(JWTRecord(report: report, source: job.source, nsp: job.nsp)), on: job.connection)
            tracker.end(job.connection)
        }
    }

    /// The tokens a handshake request carries.
    func handshakeTokens(_ head: HTTPRequestHead, engine: EngineRequest) -> ConnectionTracker.HandshakeTokens {
        JWTCandidate.handshakeTokens(query: engine.query, headers: head.headers)
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
