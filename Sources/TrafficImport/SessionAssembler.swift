import SocketIOProtocol
public import TrafficCapture
import TrafficObservation

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

        public init(body: CaptureRecord.Body, conn: String?, time: Double) {
            self.body = body
            self.conn = conn
            self.time = time
        }

        public var record: CaptureRecord {
            CaptureRecord(ts: RFC3339.format(secondsSince1970: time), conn: conn, body)
        }
    }

    /// A token to inspect, where it was seen.
    public struct Token: Sendable {
        public var token: String
        public var source: TokenSource
        public var nsp: String?
        public var conn: String
        public var time: Double
    }

    public struct Output: Sendable {
        public var records: [Stamped] = []
        public var tokens: [Token] = []

        public init() {}
    }

    /// Which connection an event came from: its client and server ends (a HAR names no client),
    /// its number (the TCP connection's in the capture, or the HAR entry's), and the scheme the
    /// client spoke.
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

        public init(client: Endpoint, server: Endpoint, number: Int) {
            self.init(client: client, server: server.description, entry: number)
        }

        /// By number only: it tells flows apart, and hashing the addresses per event showed in
        /// profiles.
        public func hash(into hasher: inout Hasher) {
            hasher.combine(entry)
        }

        var label: String { "\(client?.description ?? "the browser") ⇄ \(server)" }
    }

    private struct Conn: Sendable {
        var number: Int
        /// The same recorder the proxy keeps per conn: what it records, holds and ends, alike.
        var recorder: ConnectionRecorder
        /// Tokens found while the conn's records wait for its parser: their records must not go
        /// out before the session's.
        var heldTokens: [Token] = []
    }

    /// How long (capture time) a conn's records wait for its parser; ``ConnectionRecorder/maxHeld``
    /// bounds how many.
    static let holdingLimit = 5.0

    private let path: String?
    /// The conns still open; a closed conn's state goes (a long capture holds only its open ones),
    /// its sid staying in `bySid` so that late traffic of the session is not taken for a new one.
    private var conns: [String: Conn] = [:]
    private var bySid: [String: String] = [:]
    /// The conn each upgraded TCP connection carries.
    private var webSockets: [Flow: String] = [:]
    /// WebSockets whose upgrade is not in the capture, held until their Engine.IO version shows.
    private var joining: [Flow: [(event: WebSocketStreamReader.Event, fromClient: Bool, time: Double)]] = [:]
    /// Messages a WebSocket without its upgrade is held for at most before Engine.IO 4 is assumed.
    static let joiningLimit = 64
    private var counter = 0
    private var recoveries = RecoveryLinks()
    /// The conns of the polling requests each TCP connection carries, not answered yet, in order:
    /// a conn's `close` waits for them, and a client that drops one ends its conn, as in the proxy.
    private var inFlight: [Flow: [String]] = [:]
    static let pipelineLimit = 64
    /// How many polling requests a TCP connection carries unanswered now (for tests).
    func unanswered(on flow: Flow) -> Int { inFlight[flow]?.count ?? 0 }
    /// Which side sent a WebSocket's first close frame (true: the client), until its TCP connection ends.
    private var firstCloseFrame: [Flow: Bool] = [:]

    /// Every session's parser when it was given; nil: told by each session's first packet.
    private let parser: SocketIOParser?

    public init(path: String? = nil, parser: SocketIOParser? = nil) {
        self.path = path.map(EngineRequest.normalisedPath)
        self.parser = parser
    }

    /// The conns seen so far.
    public var connCount: Int { counter }

    public mutating func take(_ event: HTTPConversation.Event, on flow: Flow) -> Output {
        var output = Output()
        switch event {
        case .request(let head, let body, let time):
            guard let engine = Self.polling(head, under: path), let sid = engine.sid else { break }
            let id = bySid[sid] ?? open(engine: engine, head: head, sid: sid, flow: flow, time: time, into: &output)
            // HTTP/1.1 answers in order: at most `pipelineLimit` unanswered requests are followed
            // per TCP connection (a file of requests never answered grows nothing past that); the
            // answers pair with the oldest first, so those past it go untracked.
            if inFlight[flow, default: []].count < Self.pipelineLimit {
                conns[id]?.recorder.begin()
                inFlight[flow, default: []].append(id)
            }
            if head.method == "POST" { observe(.pollingBody(body), dir: .clientToServer, conn: id, time: time, into: &output) }
        case .response(let head, let body, let request, let time):
            guard let request, let engine = EngineRequest.traffic(request.target, under: path) else { break }
            let answered = Self.polling(request, under: path)?.sid != nil ? inFlight[flow]?.first : nil
            if answered != nil { inFlight[flow]!.removeFirst() }
            respond(head, body: body, request: request, engine: engine, flow: flow, time: time, into: &output)
            if let answered { ended(answered, time: time, into: &output) }
        case .webSocket(let frameEvent, let fromClient, let time):
            guard let id = webSockets[flow] else {
                if joining[flow] != nil { join(frameEvent, fromClient: fromClient, time: time, flow: flow, into: &output) }
                break
            }
            let dir: Direction = fromClient ? .clientToServer : .serverToClient
            switch frameEvent {
            case .message(let message):
                observe(.webSocket(message), dir: dir, conn: id, time: time, into: &output)
            case .close:
                // The conn ends with the TCP connection, as in the proxy: what the other side
                // sends meanwhile is still the session's. The first close frame says who ended it.
                if firstCloseFrame[flow] == nil { firstCloseFrame[flow] = fromClient }
            case .compressed:
                // HTTPConversation inflates these, or says why it could not.
                break
            case .oversized(let size):
                emit(.error(ErrorRecord(dir: dir, code: .messageTooLarge, message: "a websocket message of more than \(size) bytes, not decoded")), conn: id, time: time, into: &output)
            case .malformed(let reason):
                emit(.error(ErrorRecord(dir: dir, code: .webSocketProtocolError, message: "\(reason); no longer decoded")), conn: id, time: time, into: &output)
            }
        case .webSocketWithoutUpgrade:
            joining[flow] = []
        case .problem(let code, let message, let fromClient, let time):
            if joining[flow] != nil { finishJoining(flow, shown: nil, into: &output) }
            let dir = fromClient.map { $0 ? Direction.clientToServer : .serverToClient }
            let id = webSockets[flow]
            emit(.error(ErrorRecord(dir: dir, code: code, message: "\(flow.label): \(message)")), conn: id, time: time, into: &output)
        case .ended(let fromClient, let reset, let time):
            if joining[flow] != nil { finishJoining(flow, shown: nil, into: &output) }
            for id in inFlight.removeValue(forKey: flow) ?? [] {
                if fromClient {
                    // An Engine.IO server ends a session whose request is cut; it is how clients
                    // leave, so the conn's close, as the proxy records it, not an error.
                    close(id, by: .client, reason: "client went away mid-request", time: time, into: &output)
                }
                ended(id, time: time, into: &output)
            }
            if let id = webSockets[flow] {
                let byClient = firstCloseFrame.removeValue(forKey: flow) ?? fromClient
                let reason = reset ? "TCP reset" : (byClient ? "client closed the websocket" : "server closed the websocket")
                close(id, by: byClient ? .client : .server, reason: reason, time: time, into: &output)
            }
        }
        return output
    }

    /// The capture is over: conns still open get their close.
    public mutating func finish(time: Double) -> Output {
        var output = Output()
        for flow in joining.keys.sorted(by: { $0.label < $1.label }) {
            finishJoining(flow, shown: nil, into: &output)
        }
        for id in conns.keys.sorted(by: { conns[$0]!.number < conns[$1]!.number }) {
            close(id, by: .proxy, reason: "the capture ends", time: time, waiting: false, into: &output)
        }
        inFlight = [:]
        firstCloseFrame = [:]
        return output
    }

    // MARK: WebSockets without their upgrade

    /// A WebSocket the capture joined after its upgrade (``FrameBoundary``): its URL, headers and
    /// sid are not known, its Engine.IO version is told by which side pings first (the server in
    /// 4, the client in 3), so its messages wait for the first ping or pong, or for
    /// ``joiningLimit`` of them, or for the stream to end, and then decode as one conn.
    private mutating func join(_ event: WebSocketStreamReader.Event, fromClient: Bool, time: Double, flow: Flow, into output: inout Output) {
        joining[flow, default: []].append((event, fromClient, time))
        if case .message(.text(let text)) = event, let version = Self.engineVersion(shownBy: text, fromClient: fromClient) {
            finishJoining(flow, shown: version, into: &output)
        } else if joining[flow]!.count >= Self.joiningLimit {
            finishJoining(flow, shown: nil, into: &output)
        }
    }

    /// Engine.IO 4 servers ping and clients answer; Engine.IO 3 the other way round. A probe
    /// belongs to the upgrade, which says nothing here.
    static func engineVersion(shownBy text: String, fromClient: Bool) -> EngineIOVersion? {
        guard let type = text.utf8.first, type == UInt8(ascii: "2") || type == UInt8(ascii: "3"), text.utf8.dropFirst().elementsEqual("probe".utf8) == false else { return nil }
        let isPing = type == UInt8(ascii: "2")
        return isPing != fromClient ? .v4 : .v3
    }

    /// `shown`: the version the pings told, `nil` when they did not (4 is assumed).
    private mutating func finishJoining(_ flow: Flow, shown: EngineIOVersion?, into output: inout Output) {
        guard let held = joining.removeValue(forKey: flow), let first = held.first else { return }
        let version = shown ?? .v4
        let id = newConn(version: version)
        webSockets[flow] = id
        emit(.session(SessionRecord(url: "", path: path, eio: version, transport: .websocket, remote: flow.client?.description,
                                    upstream: "\(flow.scheme)://\(flow.server)", scheme: flow.scheme)),
             conn: id, time: first.time, into: &output)
        emit(.error(ErrorRecord(dir: nil, code: .noHandshake, message: "\(flow.label): the WebSocket's upgrade is not in the capture, so its URL, headers and sid are unknown; Engine.IO \(version.rawValue) \(shown == nil ? "assumed" : "as its pings show")")),
             conn: id, time: first.time, into: &output)
        for message in held {
            let taken = take(.webSocket(message.event, fromClient: message.fromClient, time: message.time), on: flow)
            output.records += taken.records
            output.tokens += taken.tokens
        }
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
                let text = body.isEmpty ? nil : String(decoding: body.prefix(4096), as: UTF8.self)
                emit(
                    .error(ErrorRecord(dir: .serverToClient, code: .upgradeRefused, message: "the server answered the WebSocket upgrade with \(head.status)", raw: text)),
                    conn: engine.sid.flatMap { bySid[$0] }, time: time, into: &output
                )
                break
            }
            let id = engine.sid.flatMap { bySid[$0] } ?? open(engine: engine, head: request, sid: engine.sid, flow: flow, time: time, into: &output)
            webSockets[flow] = id
        case .polling:
            guard request.method == "GET" || request.method == "POST" else { break }
            if request.method == "GET", engine.sid == nil {
                // A handshake: the session's record comes with the sid its open packet tells.
                let id = newConn(version: engine.version)
                var session = sessionRecord(request, engine: engine, sid: nil, flow: flow)
                session.answerHeaders = .object(JSONObject(head.headers.map { .init(key: JSONString($0.name), value: .string(JSONString($0.value))) }))
                guard let observed = conns[id]?.recorder.observeHandshake(
                    head.status == 200 ? .pollingBody(body) : nil, session: session, at: time,
                    link: { recoveries.link(&$0, dir: .serverToClient, conn: id) }
                ) else { return }
                let tokens = observed.tokens.map { Token(token: $0.token, source: $0.source, nsp: $0.nsp, conn: id, time: time) }
                took(observed, tokens: tokens, conn: id, time: time, into: &output)
                handshakeTokens(request, engine: engine, conn: id, time: time, into: &output)
                if head.status != 200 { refused(head, body: body, conn: id, time: time, into: &output) }
                return
            }
            guard let sid = engine.sid else { break }
            let id = bySid[sid] ?? open(engine: engine, head: request, sid: sid, flow: flow, time: time, into: &output)
            if head.status != 200 {
                // The server no longer knows the session (unless it went on over a WebSocket), as the proxy judges it.
                refused(head, body: body, conn: id, time: time, closing: head.status == 400 && !webSockets.values.contains(id), into: &output)
            } else if request.method == "GET" {
                observe(.pollingBody(body), dir: .serverToClient, conn: id, time: time, into: &output)
            }
        }
    }

    private mutating func refused(_ head: HTTPConversation.Head, body: [UInt8], conn id: String, time: Double, closing: Bool = true, into output: inout Output) {
        let text = String(decoding: body.prefix(200), as: UTF8.self)
        emit(.error(ErrorRecord(dir: .serverToClient, code: .upstreamStatus, message: "the server answered \(head.status)", raw: text)), conn: id, time: time, into: &output)
        if closing { close(id, by: .server, reason: "the server answered \(head.status)", time: time, into: &output) }
    }

    private mutating func newConn(version: EngineIOVersion) -> String {
        counter += 1
        let id = ConnectionID(number: counter).description
        conns[id] = Conn(number: counter, recorder: ConnectionRecorder(engineVersion: version, parser: parser))
        return id
    }

    /// A conn first seen after its handshake (a capture started mid-session), or a WebSocket opened
    /// without polling first.
    private mutating func open(engine: EngineRequest, head: HTTPConversation.Head, sid: String?, flow: Flow, time: Double, into output: inout Output) -> String {
        let id = newConn(version: engine.version)
        if let sid { bySid[sid] = id }
        emit(.session(sessionRecord(head, engine: engine, sid: sid, flow: flow)), conn: id, time: time, into: &output)
        handshakeTokens(head, engine: engine, conn: id, time: time, into: &output)
        return id
    }

    private func sessionRecord(_ head: HTTPConversation.Head, engine: EngineRequest, sid: String?, flow: Flow) -> SessionRecord {
        var record = SessionRecord(
            url: head.target, path: engine.path, eio: engine.version, transport: engine.transport, sid: sid,
            headers: .object(JSONObject(head.headers.map { .init(key: JSONString($0.name), value: .string(JSONString($0.value))) })),
            remote: flow.client?.description, upstream: "\(flow.scheme)://\(flow.server)", scheme: flow.scheme
        )
        if parser == .msgpack { record.parser = .msgpack }
        return record
    }

    private mutating func observe(_ frame: TrafficDecoder.Frame, dir: Direction, conn id: String, time: Double, into output: inout Output) {
        // Changed where it is kept: a copy out and back made every decoder state copy itself.
        guard let observed = conns[id]?.recorder.observe(frame, dir: dir, at: time, link: { recoveries.link(&$0, dir: dir, conn: id) }) else { return }
        let tokens = observed.tokens.map { Token(token: $0.token, source: $0.source, nsp: $0.nsp, conn: id, time: time) }
        took(observed, tokens: tokens, conn: id, time: time, into: &output)
    }

    /// What a frame gave: its records, its tokens (held with the records while they wait), the
    /// sid it told, and the conn's end at a close packet.
    private mutating func took(_ observed: ConnectionRecorder.Observed, tokens: [Token], conn id: String, time: Double, into output: inout Output) {
        if let sid = observed.learnedSid { bySid[sid] = id }
        output.records += observed.records.map { Stamped(body: $0.body, conn: id, time: $0.time) }
        add(tokens, conn: id, into: &output)
        if let side = observed.closePacketFrom { close(id, by: side, reason: "close packet", time: time, into: &output) }
    }

    /// Tokens to inspect: held while the conn's records wait, with those held before them.
    private mutating func add(_ tokens: [Token], conn id: String, into output: inout Output) {
        guard conns[id] != nil else {
            output.tokens += tokens
            return
        }
        conns[id]!.heldTokens += tokens
        if !conns[id]!.recorder.isHolding {
            output.tokens += conns[id]!.heldTokens
            conns[id]!.heldTokens = []
        }
    }

    private mutating func handshakeTokens(_ head: HTTPConversation.Head, engine: EngineRequest, conn id: String, time: Double, into output: inout Output) {
        guard conns[id] != nil else { return }
        var tokens: [Token] = []
        for (token, source) in JWTCandidate.handshakeTokens(query: engine.query, headers: head.headers)
        where conns[id]!.recorder.firstSighting(of: token, source: source, nsp: nil) {
            tokens.append(Token(token: token, source: source, nsp: nil, conn: id, time: time))
        }
        add(tokens, conn: id, into: &output)
    }

    private mutating func emit(_ body: CaptureRecord.Body, conn: String?, time: Double, into output: inout Output) {
        guard let conn else {
            output.records.append(Stamped(body: body, conn: nil, time: time))
            return
        }
        guard conns[conn] != nil else { return }
        var stamped = conns[conn]!.recorder.record(body, at: time)
        // A capture must not sit on a conn's records: after a few seconds of capture time (or
        // past the recorder's own bounds) they go as a JSON session's.
        stamped += conns[conn]!.recorder.releaseHeld(now: time, after: Self.holdingLimit)
        output.records += stamped.map { Stamped(body: $0.body, conn: conn, time: $0.time) }
        add([], conn: conn, into: &output)
    }

    /// A request of the conn was answered, or its TCP connection ended first.
    private mutating func ended(_ id: String, time: Double, into output: inout Output) {
        guard let stamped = conns[id]?.recorder.end(at: time) else { return }
        written(stamped, conn: id, into: &output)
    }

    /// Decides the conn's end: its `close` waits for its requests in flight unless `waiting` is
    /// false (the capture's end).
    private mutating func close(_ id: String, by side: Peer, reason: String, time: Double, waiting: Bool = true, into output: inout Output) {
        guard let stamped = conns[id]?.recorder.close(CloseRecord(by: side, reason: reason), at: time, waitingForActivity: waiting) else { return }
        written(stamped, conn: id, into: &output)
    }

    /// A conn's last records; once it is closed its state goes (its sid stays in `bySid`).
    private mutating func written(_ stamped: [ConnectionRecorder.Stamped], conn id: String, into output: inout Output) {
        output.records += stamped.map { Stamped(body: $0.body, conn: id, time: $0.time) }
        add([], conn: id, into: &output)
        guard conns[id]?.recorder.isClosed == true else { return }
        output.tokens += conns[id]!.heldTokens
        conns.removeValue(forKey: id)
        webSockets = webSockets.filter { $0.value != id }
    }

    /// A polling request of Engine.IO traffic (GET or POST), or nil.
    static func polling(_ head: HTTPConversation.Head, under path: String?) -> EngineRequest? {
        guard head.method == "GET" || head.method == "POST", let engine = EngineRequest.traffic(head.target, under: path), engine.transport == .polling else { return nil }
        return engine
    }
}
