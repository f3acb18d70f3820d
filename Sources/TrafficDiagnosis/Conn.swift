import TrafficCapture

/// What the diagnoser keeps of one conn, and the rules that read it.
struct Conn {
    let sessionSeq: Int
    let opened: Double
    let eio: EngineIOVersion
    let sid: String?
    let upstream: String?
    let remote: String?
    let userAgent: String?
    var transport: EngineTransport
    var sidKnown: String?
    var pingInterval: Double?
    var pingTimeout: Double?
    var maxPayload: Int?
    var offeredWebSocket = false
    var upgraded = false
    var lastActivity: Double
    var lastActivitySeq: Int
    /// The server's last ping not answered yet (Engine.IO 4), or the client's (Engine.IO 3).
    var unansweredPing: (time: Double, seq: Int, from: Direction)?
    var tokens: [(record: JWTRecord, seq: Int)] = []
    var connects: [String: Int] = [:]
    var connected: [String] = []
    var acks: [AckKey: PendingAck] = [:]
    var failedUpgrades: [(seq: Int, status: String)] = []
    /// The last client message larger than the server's maxPayload.
    var oversized: (size: Int, seq: Int, time: Double)?
    var refused: (nsp: String, seq: Int)?
    /// A refusal waiting for its token's record (tokens are judged after the packets that carry
    /// them are written): decided when it comes, at the conn's end, or a second later.
    /// Boxed, as it is rare and a packet record is large.
    var pendingRefusal: PendingRefusal?
    /// Whether the client sent something that looks like a JWT (its header is base64 of `{"`) in
    /// the handshake's URL or credentials, or in a CONNECT's data.
    var mayHaveSentToken: Bool
    /// The session is being ended on purpose (a close packet, a refused or dropped main
    /// namespace): a request that then meets "Session ID unknown" is the end's, not a balancer's.
    var ending = false
    var faulted = false
    var said: Set<DiagnosisCode> = []
    /// Set at the end when an upstream closed the WebSocket after this many idle seconds.
    var idleClose: Double?
    var endDescription = "closed"

    struct AckKey: Hashable {
        var dir: Direction
        var nsp: String
        var id: UInt64
    }

    final class PendingRefusal {
        let packet: PacketRecord
        let seq: Int
        let time: Double
        init(_ packet: PacketRecord, seq: Int, time: Double) { (self.packet, self.seq, self.time) = (packet, seq, time) }
    }

    struct PendingAck {
        var event: String
        var seq: Int
        var time: Double
    }

    /// A conn that ends this soon after it opened, cut by the server, ended badly.
    static let shortLived = 10.0

    init(session: SessionRecord, seq: Int, time: Double) {
        sessionSeq = seq
        opened = time
        eio = session.eio
        sid = session.sid
        sidKnown = session.sid
        upstream = session.upstream
        remote = session.remote
        transport = session.transport
        lastActivity = time
        lastActivitySeq = seq
        userAgent = session.headers?.objectValue?.members.first { $0.key.value.lowercased() == "user-agent" }?.value.stringValue
        let credentials = session.headers?.objectValue?.members.filter { ["authorization", "cookie"].contains($0.key.value.lowercased()) }
        mayHaveSentToken = ([session.url] + (credentials?.compactMap(\.value.stringValue) ?? [])).contains(where: Self.looksLikeToken)
    }

    static func looksLikeToken(_ text: String) -> Bool { text.contains("eyJ") }

    /// The client, as far as the capture tells: its address (without the port) and user agent.
    var clientKey: String? {
        guard let remote else { return nil }
        return Self.host(of: remote) + "|" + (userAgent ?? "")
    }

    var clientDescription: String {
        let host = remote.map(Self.host) ?? "a client"
        return userAgent.map { "\(host) (\($0.prefix(60)))" } ?? host
    }

    static func host(of remote: String) -> String {
        if remote.hasPrefix("["), let end = remote.firstIndex(of: "]") { return String(remote[remote.index(after: remote.startIndex)..<end]) }
        guard let colon = remote.lastIndex(of: ":"), remote.firstIndex(of: ":") == colon else { return remote }
        return String(remote[..<colon])
    }

    // MARK: Taking records

    mutating func take(_ engine: EngineRecord, seq: Int, time: Double) {
        active(seq, time)
        switch engine.type {
        case .open where engine.dir == .serverToClient:
            let data = engine.data
            sidKnown = data?["sid"]?.stringValue ?? sidKnown
            pingInterval = data?["pingInterval"]?.numberValue?.doubleValue.map { $0 / 1000 }
            pingTimeout = data?["pingTimeout"]?.numberValue?.doubleValue.map { $0 / 1000 }
            maxPayload = data?["maxPayload"]?.numberValue?.intValue
            offeredWebSocket = data?["upgrades"]?.arrayValue?.contains { $0.stringValue == "websocket" } ?? false
        case .upgrade where engine.dir == .clientToServer:
            upgraded = true
            transport = .websocket
        case .close:
            ending = true
        case .ping:
            // Engine.IO 4: the server pings; 3: the client does. A probe (`2probe`) is no heartbeat.
            if engine.data?.stringValue != "probe" { unansweredPing = (time, seq, engine.dir) }
        case .pong:
            if let ping = unansweredPing, ping.from != engine.dir { unansweredPing = nil }
        default: break
        }
    }

    mutating func take(_ token: JWTRecord, seq: Int) -> [DiagnosisRecord] {
        tokens.append((token, seq))
        if tokens.count > 8 { tokens.removeFirst() }
        guard let pending = pendingRefusal, token.nsp == nil || token.nsp == pending.packet.nsp else { return [] }
        return decidePendingRefusal()
    }

    /// Decides a refusal that waited for its token.
    mutating func decidePendingRefusal() -> [DiagnosisRecord] {
        guard let pending = pendingRefusal else { return [] }
        pendingRefusal = nil
        return refusal(pending.packet, seq: pending.seq, time: pending.time, waited: true)
    }

    mutating func take(_ packet: PacketRecord, seq: Int, time: Double) -> [DiagnosisRecord] {
        active(seq, time)
        switch (packet.type, packet.dir) {
        case (.connect, .clientToServer):
            connects[packet.nsp] = seq
            if !mayHaveSentToken, let data = packet.data { mayHaveSentToken = Self.looksLikeToken(data.jsonText) }
        case (.disconnect, .serverToClient) where packet.nsp == "/":
            ending = true
        case (.connect, .serverToClient):
            connects[packet.nsp] = nil
            if !connected.contains(packet.nsp), connected.count < 64 { connected.append(packet.nsp) }
        case (.connectError, .serverToClient):
            if packet.nsp == "/" { ending = true }
            return refusal(packet, seq: seq, time: time, waited: false)
        case (.event, _), (.binaryEvent, _):
            if let id = packet.id, acks.count < Diagnoser.maxPendingAcks {
                acks[AckKey(dir: packet.dir, nsp: packet.nsp, id: id)] = PendingAck(event: packet.event ?? "?", seq: seq, time: time)
            }
        case (.ack, _), (.binaryAck, _):
            if let id = packet.id { acks[AckKey(dir: packet.dir.opposite, nsp: packet.nsp, id: id)] = nil }
        default: break
        }
        if packet.dir == .clientToServer, let maxPayload {
            let size = packet.raw.utf8.count + (packet.attachments?.reduce(0) { $0 + $1.utf8.count * 3 / 4 } ?? 0)
            if size > maxPayload { oversized = (size, seq, time) }
        }
        return []
    }

    mutating func take(_ error: ErrorRecord, seq: Int, time: Double) -> [DiagnosisRecord] {
        let body = error.raw ?? ""
        let status = Self.status(in: error.message)
        // Captures imported before `proxy.upgrade_refused` existed said it as an upstream status.
        let upgrade = error.code == .upgradeRefused || (error.code == .upstreamStatus && error.message.contains("refused the upgrade"))
        switch error.code {
        case _ where upgrade:
            failedUpgrades.append((seq, status ?? "an answer other than 101"))
            if failedUpgrades.count > 4 { failedUpgrades.removeFirst() }
            return upgradeRefused(status: status, body: body, seq: seq)
        case .upstreamStatus:
            return answered(status: status, body: body, seq: seq, time: time)
        case .messageCut where error.dir == .clientToServer, .requestCut:
            // "… a message of 3100042 bytes …", "… a POST body of 3100042 bytes …": its announced size.
            let size = Self.number(after: "message of ", in: error.message) ?? Self.number(after: "body of ", in: error.message)
            if let maxPayload, let size, size > maxPayload {
                oversized = (size, seq, time)
            }
            return []
        default:
            return []
        }
    }

    private mutating func active(_ seq: Int, _ time: Double) {
        lastActivity = time
        lastActivitySeq = seq
    }

    /// The integer that follows `marker` in `text`.
    static func number(after marker: String, in text: String) -> Int? {
        let characters = Array(text)
        let wanted = Array(marker)
        guard wanted.count <= characters.count else { return nil }
        for start in 0...(characters.count - wanted.count) where characters[start..<start + wanted.count].elementsEqual(wanted) {
            return Int(String(characters[(start + wanted.count)...].prefix { $0.isNumber }))
        }
        return nil
    }

    /// The first three-digit status in "the server answered 400".
    static func status(in message: String) -> String? {
        let digits = Array(message.utf8)
        var index = 0
        while index + 3 <= digits.count {
            let run = digits[index..<index + 3]
            let before = index == 0 || !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(digits[index - 1])
            let after = index + 3 == digits.count || !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(digits[index + 3])
            if before, after, run.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }), run.first != UInt8(ascii: "0") {
                return String(decoding: run, as: UTF8.self)
            }
            index += 1
        }
        return nil
    }

    /// Said once per conn.
    mutating func once(_ entry: DiagnosisCatalog.Entry, _ message: String, evidence: [Int]) -> [DiagnosisRecord] {
        guard said.insert(entry.code).inserted else { return [] }
        return [entry.record(message, evidence: evidence)]
    }
}

extension Direction {
    var opposite: Direction { self == .clientToServer ? .serverToClient : .clientToServer }
}
