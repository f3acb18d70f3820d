import SocketIOProtocol
public import TrafficCapture

/// Engine.IO sessions out of HTTP conversations, as `siotap proxy` records them: polling requests
/// on any TCP connection joined into one conn by their `sid`, the upgrade followed, Engine.IO 3
/// and 4 found on any path by the query (or on `path` only). Records carry the capture's times.
/// Pure: conversation events in, records out; tokens are returned for the caller to inspect.
public struct SessionAssembler: Sendable {
    /// A record, its conn and its time (seconds since 1970).
    public struct Stamped: Sendable {
        public var body: CaptureRecord.Body
        public var conn: String?
        public var time: Double

        public var record: CaptureRecord {
            CaptureRecord(ts: RFC3339.format(secondsSince1970: time), conn: conn, body)
        }
    }

    /// A token to inspect, where it was seen.
    public struct Token: Sendable {
        public var token: String
        public var source: String
        public var nsp: String?
        public var conn: String
        public var time: Double
    }

    public struct Output: Sendable {
        public var records: [Stamped] = []
        public var tokens: [Token] = []

        public init() {}
    }

    /// Which connection an event came from: its client and server ends (a HAR names no client,
    /// and tells its entries apart by number), and the scheme the client spoke.
    public struct Flow: Sendable, Hashable {
        public var client: Endpoint?
        public var server: String
        public var scheme: String
        public var entry: Int

        public init(client: Endpoint?, server: String, scheme: String = "http", entry: Int = 0) {
            self.client = client
            self.server = server
            self.scheme = scheme
            self.entry = entry
        }

        public init(client: Endpoint, server: Endpoint) {
            self.init(client: client, server: server.description)
        }

        var label: String { "\(client?.description ?? "the browser") ⇄ \(server)" }
    }

    private struct Conn: Sendable {
        var number: Int
        var observation: ConnectionObservation
    }

    private let path: String?
    /// The conns still open; a closed conn's state goes (a long capture holds only its open ones),
    /// its sid staying in `bySid` so that late traffic of the session is not taken for a new one.
    private var conns: [String: Conn] = [:]
    private var bySid: [String: String] = [:]
    /// The conn each upgraded TCP connection carries.
    private var webSockets: [Flow: String] = [:]
    private var counter = 0

    public init(path: String? = nil) {
        self.path = path.map(EngineRequest.normalisedPath)
    }

    /// The conns seen so far.
    public var connCount: Int { counter }

    public mutating func take(_ event: HTTPConversation.Event, on flow: Flow) -> Output {
        var output = Output()
        switch event {
        case .request(let head, let body, let time):
            guard let engine = EngineRequest.traffic(head.target, under: path), engine.transport == .polling, head.method == "POST",
                  let sid = engine.sid
            else { break }
            let id = bySid[sid] ?? open(engine: engine, head: head, sid: sid, flow: flow, time: time, into: &output)
            observe(.pollingBody(body), dir: .clientToServer, conn: id, time: time, into: &output)
        case .response(let head, let body, let request, let time):
            guard let request, let engine = EngineRequest.traffic(request.target, under: path) else { break }
            respond(head, body: body, request: request, engine: engine, flow: flow, time: time, into: &output)
        case .webSocket(let frameEvent, let fromClient, let time):
            guard let id = webSockets[flow] else { break }
            let dir: Direction = fromClient ? .clientToServer : .serverToClient
            switch frameEvent {
            case .message(let message):
                observe(.webSocket(message), dir: dir, conn: id, time: time, into: &output)
            case .close:
                close(id, by: fromClient ? .client : .server, reason: fromClient ? "client closed the websocket" : "server closed the websocket", time: time, into: &output)
            case .compressed:
                // HTTPConversation inflates these, or says why it could not.
                break
            case .oversized(let size):
                emit(.error(ErrorRecord(dir: dir, code: .messageTooLarge, message: "a websocket message of more than \(size) bytes, not decoded")), conn: id, time: time, into: &output)
            case .malformed(let reason):
                emit(.error(ErrorRecord(dir: dir, code: .webSocketProtocolError, message: "\(reason); no longer decoded")), conn: id, time: time, into: &output)
            }
        case .problem(let code, let message, let fromClient, let time):
            let dir = fromClient.map { $0 ? Direction.clientToServer : .serverToClient }
            let id = webSockets[flow]
            emit(.error(ErrorRecord(dir: dir, code: ErrorCode(rawValue: code), message: "\(flow.label): \(message)")), conn: id, time: time, into: &output)
        case .ended(let fromClient, let reset, let time):
            if let id = webSockets[flow] {
                close(id, by: fromClient ? .client : .server, reason: reset ? "TCP reset" : (fromClient ? "client closed the websocket" : "server closed the websocket"), time: time, into: &output)
            }
        }
        return output
    }

    /// The capture is over: conns still open get their close.
    public mutating func finish(time: Double) -> Output {
        var output = Output()
        for id in conns.keys.sorted(by: { conns[$0]!.number < conns[$1]!.number }) {
            close(id, by: .proxy, reason: "the capture ends", time: time, into: &output)
        }
        return output
    }

    // MARK: Sessions

    private mutating func respond(
        _ head: HTTPConversation.Head, body: [UInt8], request: HTTPConversation.Head, engine: EngineRequest, flow: Flow, time: Double,
        into output: inout Output
    ) {
        switch engine.transport {
        case .websocket:
            guard head.status == 101 else {
                if engine.sid == nil { break }
                emit(.error(ErrorRecord(dir: .serverToClient, code: .upstreamStatus, message: "the server refused the upgrade with \(head.status)")), conn: engine.sid.flatMap { bySid[$0] }, time: time, into: &output)
                break
            }
            let id = engine.sid.flatMap { bySid[$0] } ?? open(engine: engine, head: request, sid: engine.sid, flow: flow, time: time, into: &output)
            webSockets[flow] = id
        case .polling:
            guard request.method == "GET" || request.method == "POST" else { break }
            if request.method == "GET", engine.sid == nil {
                // A handshake: the session's record comes once its open packet has told the sid.
                let id = newConn(engine: engine)
                var decoded = Output()
                if head.status == 200 { observe(.pollingBody(body), dir: .serverToClient, conn: id, time: time, into: &decoded) }
                let sid = conns[id]?.observation.sid
                if let sid { bySid[sid] = id }
                emit(.session(sessionRecord(request, engine: engine, sid: sid, flow: flow)), conn: id, time: time, into: &output)
                handshakeTokens(request, engine: engine, conn: id, time: time, into: &output)
                output.records += decoded.records
                output.tokens += decoded.tokens
                if head.status != 200 { refused(head, body: body, conn: id, time: time, into: &output) }
                return
            }
            guard let sid = engine.sid else { break }
            let id = bySid[sid] ?? open(engine: engine, head: request, sid: sid, flow: flow, time: time, into: &output)
            if head.status != 200 {
                refused(head, body: body, conn: id, time: time, into: &output)
            } else if request.method == "GET" {
                observe(.pollingBody(body), dir: .serverToClient, conn: id, time: time, into: &output)
            }
        }
    }

    private mutating func refused(_ head: HTTPConversation.Head, body: [UInt8], conn id: String, time: Double, into output: inout Output) {
        let text = String(decoding: body.prefix(200), as: UTF8.self)
        emit(.error(ErrorRecord(dir: .serverToClient, code: .upstreamStatus, message: "the server answered \(head.status)", raw: text)), conn: id, time: time, into: &output)
        close(id, by: .server, reason: "the server answered \(head.status)", time: time, into: &output)
    }

    private mutating func newConn(engine: EngineRequest) -> String {
        counter += 1
        let id = "c\(counter)"
        conns[id] = Conn(number: counter, observation: ConnectionObservation(engineVersion: engine.version))
        return id
    }

    /// A conn first seen after its handshake (a capture started mid-session), or a WebSocket opened
    /// without polling first.
    private mutating func open(engine: EngineRequest, head: HTTPConversation.Head, sid: String?, flow: Flow, time: Double, into output: inout Output) -> String {
        let id = newConn(engine: engine)
        if let sid { bySid[sid] = id }
        emit(.session(sessionRecord(head, engine: engine, sid: sid, flow: flow)), conn: id, time: time, into: &output)
        handshakeTokens(head, engine: engine, conn: id, time: time, into: &output)
        return id
    }

    private func sessionRecord(_ head: HTTPConversation.Head, engine: EngineRequest, sid: String?, flow: Flow) -> SessionRecord {
        SessionRecord(
            url: head.target, path: engine.path, eio: engine.version.rawValue, transport: engine.transport, sid: sid,
            headers: .object(JSONObject(head.headers.map { .init(key: JSONString($0.name), value: .string(JSONString($0.value))) })),
            remote: flow.client?.description, upstream: "\(flow.scheme)://\(flow.server)", scheme: flow.scheme
        )
    }

    private mutating func observe(_ frame: TrafficDecoder.Frame, dir: Direction, conn id: String, time: Double, into output: inout Output) {
        guard var conn = conns[id] else { return }
        let (decoded, learnedSid) = conn.observation.observe(frame, dir: dir, now: time)
        var tokens: [Token] = []
        for sighting in decoded.tokens where conn.observation.firstSighting(of: sighting.token, source: sighting.source, nsp: sighting.nsp) {
            tokens.append(Token(token: sighting.token, source: sighting.source, nsp: sighting.nsp, conn: id, time: time))
        }
        conns[id] = conn
        if let learnedSid { bySid[learnedSid] = id }
        for body in decoded.records {
            emit(body, conn: id, time: time, into: &output)
            if case .engine(let engine) = body, engine.type == .close {
                close(id, by: engine.dir == .clientToServer ? .client : .server, reason: "close packet", time: time, into: &output)
            }
        }
        output.tokens += tokens
    }

    private mutating func handshakeTokens(_ head: HTTPConversation.Head, engine: EngineRequest, conn id: String, time: Double, into output: inout Output) {
        guard var conn = conns[id] else { return }
        for (token, source) in JWTCandidate.handshakeTokens(query: engine.query, headers: head.headers)
        where conn.observation.firstSighting(of: token, source: source, nsp: nil) {
            output.tokens.append(Token(token: token, source: source, nsp: nil, conn: id, time: time))
        }
        conns[id] = conn
    }

    private func emit(_ body: CaptureRecord.Body, conn: String?, time: Double, into output: inout Output) {
        if let conn, conns[conn] == nil { return }
        output.records.append(Stamped(body: body, conn: conn, time: time))
    }

    private mutating func close(_ id: String, by side: Peer, reason: String, time: Double, into output: inout Output) {
        guard conns.removeValue(forKey: id) != nil else { return }
        webSockets = webSockets.filter { $0.value != id }
        output.records.append(Stamped(body: .close(CloseRecord(by: side, reason: reason)), conn: id, time: time))
    }
}
