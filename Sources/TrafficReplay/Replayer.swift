import JWTInspection
import SocketIOClient
public import TrafficCapture
public import TransportTLS
import TrafficObservation
import Synchronization

/// Plays the client side of a capture against a server and compares what comes back.
///
/// Every recorded conn gets a client with the same Engine.IO version and query; its recorded
/// client-to-server packets are sent in order, ack ids as recorded. The capture's order across
/// connections holds: a packet recorded after some server-to-client packet (on any conn) is sent
/// only once that packet has arrived, or the timeout passed.
public enum Replayer {
    public struct Options: Sendable {
        public var host: String
        public var port: Int
        public var ignoredPaths: [String]
        /// How long to wait for each awaited packet.
        public var timeoutMilliseconds: Int
        /// Re-mint the capture's tokens with this secret (see ``TokenRefresher``).
        public var jwtSecret: String?
        /// Re-mint them with this key instead (a PEM private key, or a secret).
        public var tokenKey: TokenRefresher.Key?
        /// The Engine.IO path to replay on; `nil`: each conn's recorded path.
        public var path: String?
        /// Play the capture's `fault` records again: the server gets what it got through the
        /// faulty proxy (a dropped or refused packet is not sent, a rewritten one goes rewritten).
        /// Off, fault records are ignored and every recorded client packet is sent.
        public var withFaults: Bool
        /// TLS to the server (an `https://` target); nil: plain.
        public var tls: TLSClientSettings?

        public init(
            host: String = "127.0.0.1", port: Int, path: String? = nil, ignoredPaths: [String] = [], timeoutMilliseconds: Int = 3_000,
            jwtSecret: String? = nil, tokenKey: TokenRefresher.Key? = nil, withFaults: Bool = false, tls: TLSClientSettings? = nil
        ) {
            self.tokenKey = tokenKey
            self.tls = tls
            self.withFaults = withFaults
            self.host = host
            self.port = port
            self.path = path
            self.ignoredPaths = ignoredPaths
            self.timeoutMilliseconds = timeoutMilliseconds
            self.jwtSecret = jwtSecret
        }
    }

    public struct Report: Sendable, CustomStringConvertible {
        public var connections: [ConnectionDiff]
        public var problems: [String]
        /// Why conns differ, where the capture tells (a refused CONNECT's expired token): said first.
        public var explanations: [String] = []
        public var isEqual: Bool { problems.isEmpty && connections.allSatisfy(\.isEqual) }

        public init(connections: [ConnectionDiff], problems: [String]) {
            self.connections = connections
            self.problems = problems
        }

        /// The report as a test failure reads best: per conn, what matched and what differs.
        public var description: String { lines(highlight: { _, text in text }).joined(separator: "\n") }

        /// The report's lines; `highlight` styles a part (`bad`, `good`, `warn`, `bold`).
        public func lines(highlight: (String, String) -> String) -> [String] {
            var lines: [String] = []
            for explanation in explanations { lines.append(highlight("bad", explanation)) }
            for problem in problems { lines.append(highlight("bad", "problem: \(problem)")) }
            for diff in connections {
                let verdict = diff.isEqual ? highlight("good", "✓ same") : highlight("bad", "✗ differs")
                lines.append("\(highlight("bold", diff.conn)) \(verdict): \(diff.matched) matched, \(diff.missing.count) missing, \(diff.unexpected.count) unexpected, \(diff.changed.count) changed")
                for missing in diff.missing {
                    lines.append("  " + highlight("bad", "missing") + " #\(missing.seq) \(diff.label(missing.seq, key: missing.key)) \(missing.payload.jsonText)")
                }
                for unexpected in diff.unexpected { lines.append("  " + highlight("warn", "unexpected") + " \(diff.label(nil, key: unexpected.key)) \(unexpected.payload.jsonText)") }
                for change in diff.changed {
                    lines.append("  " + highlight("warn", "changed") + " #\(change.seq) \(diff.label(change.seq, key: change.key)) at \(change.path)")
                    lines.append("    expected: " + (change.expected?.jsonText ?? "(nothing)"))
                    lines.append("    actual:   " + (change.actual?.jsonText ?? "(nothing)"))
                }
            }
            lines.append(isEqual ? highlight("good", "replay: no differences") : highlight("bad", "replay: differences found"))
            return lines
        }
    }

    /// One conn of a capture as a client plays it (replay, and each virtual user of `siotap load`).
    package struct Script: Sendable {
        package var conn: String
        package var engineVersion: EngineIOVersion = .v4
        package var query: String = ""
        /// The Engine.IO path the conn was recorded on.
        package var path = "/socket.io/"
        package var steps: [(seq: Int, packet: PacketRecord)] = []
        /// When each step was recorded (seconds since 1970), by `seq`: a load's think times.
        package var times: [Int: Double] = [:]
        /// When the session was recorded (seconds since 1970), for shifting token times.
        package var recordedAt: Double?
        /// The capture's verdicts on this conn's tokens, by the token's claims text.
        package var verdicts: [String: Bool] = [:]
        /// When this conn's tokens expire (`exp`, seconds since 1970), to explain a refusal.
        package var tokenExpiries: [Double] = []
        /// The transport history: websocket only, polling only, or polling then upgrade.
        package var transport: SocketIOClient.TransportPlan = .websocket
        /// The session's parser, as its `session` record says (JSON when it says nothing).
        package var parser: SocketIOParser = .json
        /// Connection-state recovery: the server gave this session a pid (its events carry offsets).
        package var recovery = false
        /// The conn whose session this one's CONNECT asks back.
        package var recovers: String?
    }

    /// Whether a capture's sessions used connection-state recovery (a CONNECT answer with a pid):
    /// the built-in server then replays with it on.
    public static func usesRecovery(_ records: [CaptureRecord]) -> Bool {
        records.contains { record in
            if case .packet(let packet) = record.body { packet.type == .connect && packet.dir == .serverToClient && packet.data?["pid"]?.stringValue != nil } else { false }
        }
    }

    /// The parser a capture's sessions used: msgpack when any `session` record says so. The
    /// built-in server speaks one parser, so replaying against it takes this.
    public static func parser(of records: [CaptureRecord]) -> SocketIOParser {
        records.contains { if case .session(let session) = $0.body { session.parser == .msgpack } else { false } } ? .msgpack : .json
    }

    public static func run(_ records: [CaptureRecord], options: Options) async -> Report {
        var scripts = makeScripts(records, withFaults: options.withFaults)
        if let key = options.tokenKey ?? options.jwtSecret.map(TokenRefresher.Key.secret) {
            let refresher = TokenRefresher(key: key)
            for index in scripts.indices { scripts[index] = await refreshTokens(scripts[index], refresher: refresher) }
        }
        let progress = Progress(
            expected: scripts.flatMap { script in script.steps.filter { $0.packet.dir == .serverToClient }.map(\.seq) },
            sends: scripts.flatMap { script in script.steps.filter { $0.packet.dir == .clientToServer }.map(\.seq) }
        )
        let order = CrossConnOrder(records.compactMap { record in
            guard case .packet(let packet) = record.body, let conn = record.conn else { return nil }
            return CrossConnOrder.Packet(seq: record.seq, conn: conn, time: RFC3339.parse(record.ts), record: packet)
        })
        let normalizer = PacketNormalizer(ignoredPaths: options.ignoredPaths)
        // A conn whose session another one asks back ends in the replay before anything recorded
        // after its last packet is sent: the server then keeps its session, and the events sent
        // meanwhile are missed, as they were, not delivered to it. (Its `close` record may come
        // later in the capture than other conns' packets: the proxy hears of a transport's end late.)
        let recovered = Set(scripts.compactMap(\.recovers))
        let recoveries = Recoveries(closes: Dictionary(
            scripts.filter { recovered.contains($0.conn) }.compactMap { script in script.steps.last.map { (script.conn, $0.seq) } },
            uniquingKeysWith: min
        ))
        var diffs: [ConnectionDiff] = []
        var problems: [(conn: String, text: String)] = []
        await withTaskGroup(of: (String, ConnectionDiff?, String?).self) { group in
            for script in scripts {
                group.addTask {
                    let (diff, problem) = await play(script, options: options, progress: progress, order: order, normalizer: normalizer, recoveries: recoveries)
                    return (script.conn, diff, problem)
                }
            }
            for await (conn, diff, problem) in group {
                if let diff { diffs.append(diff) }
                if let problem { problems.append((conn, problem)) }
            }
        }
        // In the capture's order, whichever conn finished first.
        let position = Dictionary(scripts.enumerated().map { ($1.conn, $0) }, uniquingKeysWith: min)
        diffs.sort { position[$0.conn, default: 0] < position[$1.conn, default: 0] }
        problems.sort { position[$0.conn, default: 0] < position[$1.conn, default: 0] }
        var report = Report(connections: diffs, problems: problems.map(\.text))
        let reminted = options.tokenKey != nil || options.jwtSecret != nil
        let byConn = Dictionary(scripts.map { ($0.conn, $0) }, uniquingKeysWith: { first, _ in first })
        report.explanations = diffs.compactMap { diff in
            byConn[diff.conn].flatMap { explainRefusal(diff, script: $0, reminted: reminted, now: CaptureClock.secondsSince1970()) }
        }
        return report
    }

    /// A CONNECT the capture shows accepted, refused now: said first, with the likely cause the
    /// capture knows (its token has expired since), as a person debugging it needs it.
    static func explainRefusal(_ diff: ConnectionDiff, script: Script, reminted: Bool, now: Double) -> String? {
        guard let accepted = diff.missing.first(where: { $0.key.hasPrefix("CONNECT ") }) else { return nil }
        let nsp = String(accepted.key.dropFirst("CONNECT ".count).split(separator: " ").first ?? "/")
        guard let refusal = diff.unexpected.first(where: { $0.key.hasPrefix("CONNECT_ERROR \(nsp)") }) else { return nil }
        let data = refusal.payload["data"]
        let said = data?["message"]?.stringValue ?? data?.stringValue ?? data?.jsonText ?? "no message"
        let head = "\(diff.conn): the server refused the CONNECT to \(nsp) (\"\(said)\") that it accepted in the capture"
        if reminted {
            return head + "; its token was re-minted: is the key the one the server verifies with?"
        }
        if let expiry = script.tokenExpiries.min(), expiry < now {
            let minutes = Int(((now - expiry) / 60).rounded())
            let ago = minutes < 1 ? "less than a minute" : minutes < 120 ? "\(minutes) minute\(minutes == 1 ? "" : "s")" : "\(minutes / 60) hours"
            return head + ": the recorded token expired at \(RFC3339.format(secondsSince1970: expiry, fractionDigits: 0)) (\(ago) before this run); "
                + "re-mint it with --jwt-secret or --jwt-key"
        }
        return head + ": the server's auth rules, or what the token must hold, have changed"
    }

    package static func makeScripts(_ records: [CaptureRecord], withFaults: Bool = false) -> [Script] {
        let faults = withFaults ? RecordedFaults(records) : nil
        // Answers to the proxy's own emits: a client's never reached the server, and a server's
        // comes only when the emit is replayed too.
        let answers = RecordedFaults.answers(in: records)
        var scripts: [String: Script] = [:]
        var order: [String] = []
        for record in records.sorted(by: { $0.seq < $1.seq }) {
            guard let conn = record.conn else { continue }
            if scripts[conn] == nil {
                scripts[conn] = Script(conn: conn)
                order.append(conn)
            }
            switch record.body {
            case .session(let session):
                scripts[conn]!.engineVersion = session.eio
                scripts[conn]!.query = replayQuery(session.url)
                // An imported WebSocket joined mid-stream has no URL: the default mount point.
                if let path = session.path ?? (session.url.isEmpty ? nil : EngineRequest.path(of: session.url)) { scripts[conn]!.path = path }
                scripts[conn]!.recordedAt = RFC3339.parse(record.ts)
                scripts[conn]!.transport = SocketIOClient.TransportPlan(start: session.transport)
                scripts[conn]!.parser = session.parser ?? .json
            case .engine(let engine):
                if engine.transport == .websocket, scripts[conn]!.transport == .polling { scripts[conn]!.transport = .pollingThenUpgrade }
            case .jwt(let jwt):
                if let exp = jwt.claims["exp"]?.numberValue?.doubleValue { scripts[conn]!.tokenExpiries.append(exp) }
                if let verified = jwt.verified { scripts[conn]!.verdicts[jwt.claims.jsonText] = verified || jwt.reason?.hasPrefix("bad signature") == false }
            case .intervention(let intervention):
                // With --with-faults, what the proxy sent the server in the client's name is sent too.
                guard withFaults, intervention.dir == .clientToServer, let script = scripts[conn],
                    let packet = RecordedFaults.emitted(intervention, version: SocketIOVersion(engine: script.engineVersion), transport: script.steps.last?.packet.transport ?? .polling)
                else { break }
                scripts[conn]!.steps.append((record.seq, packet))
            case .packet(var packet):
                if answers.contains(record.seq), packet.dir == .clientToServer || !withFaults { continue }
                if packet.type == .connect {
                    // A string pid: a capture of notepack's `undefined` pid from before it was
                    // read as such holds an `$ext` object there, which is no recovery.
                    if packet.dir == .serverToClient, packet.data?["pid"]?.stringValue != nil { scripts[conn]!.recovery = true }
                    if packet.dir == .clientToServer, ConnectionObservation.recoveryPid(of: packet) != nil {
                        scripts[conn]!.recovers = packet.recovers ?? scripts[conn]!.recovers
                    }
                }
                if let faults, packet.dir == .clientToServer {
                    // What the server got: nothing of a dropped packet, a rewritten one as rewritten.
                    guard let delivered = faults.delivered(packet, seq: record.seq, conn: conn) else { continue }
                    packet = delivered
                }
                scripts[conn]!.steps.append((record.seq, packet))
                scripts[conn]!.times[record.seq] = RFC3339.parse(record.ts)
                if packet.transport == .websocket, scripts[conn]!.transport == .polling { scripts[conn]!.transport = .pollingThenUpgrade }
            default:
                break
            }
        }
        return order.compactMap { scripts[$0] }.filter { !$0.steps.isEmpty }
    }

    /// The script with every token in its query and CONNECT payloads re-minted.
    package static func refreshTokens(_ script: Script, refresher: TokenRefresher) async -> Script {
        var script = script
        let recordedAt = script.recordedAt ?? refresher.now
        func refreshed(_ token: String) async -> String {
            let verdict = JWTText.parts(of: token).flatMap { script.verdicts[$0.claims.jsonText] }
            return await refresher.refresh(token, recordedAt: recordedAt, signatureWasGood: verdict)
        }
        var pairs: [String] = []
        for pair in script.query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2, let token = JWTCandidate.token(in: QueryString.percentDecode(parts[1])) {
                pairs.append("\(parts[0])=\(await refreshed(token))")
            } else {
                pairs.append(String(pair))
            }
        }
        script.query = pairs.joined(separator: "&")
        for index in script.steps.indices where script.steps[index].packet.type == .connect && script.steps[index].packet.dir == .clientToServer {
            if let data = script.steps[index].packet.data {
                script.steps[index].packet.data = await refreshingStrings(data) { text in
                    guard let token = JWTCandidate.token(in: text) else { return text }
                    let fresh = await refreshed(token)
                    return text.hasPrefix(token) ? fresh : String(text.dropLast(token.count)) + fresh
                }
            }
        }
        return script
    }

    private static func refreshingStrings(_ value: JSONValue, _ transform: (String) async -> String) async -> JSONValue {
        switch value {
        case .string(let string): return .string(await transform(string.value))
        case .array(let items):
            var result: [JSONValue] = []
            for item in items { result.append(await refreshingStrings(item, transform)) }
            return .array(result)
        case .object(let object):
            var members: [JSONObject.Member] = []
            for member in object.members { members.append(.init(key: member.key, value: await refreshingStrings(member.value, transform))) }
            return .object(JSONObject(members))
        default: return value
        }
    }

    /// The recorded query without what each run sets anew (EIO, transport, sid, cache buster).
    static func replayQuery(_ url: String) -> String {
        guard let query = url.split(separator: "?", maxSplits: 1).dropFirst().first else { return "" }
        return query.split(separator: "&").filter { pair in
            let name = pair.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
            return !["EIO", "transport", "sid", "t", "b64"].contains(name)
        }.joined(separator: "&")
    }

    private static func play(
        _ script: Script, options: Options, progress: Progress, order: CrossConnOrder, normalizer: PacketNormalizer, recoveries: Recoveries
    ) async -> (ConnectionDiff?, String?) {
        var normalizer = normalizer
        normalizer.recoveryOffsets = script.recovery
        let client = SocketIOClient(
            host: options.host, port: options.port, path: options.path ?? script.path, engineVersion: script.engineVersion, query: script.query,
            parser: script.parser, tls: options.tls
        )
        let sends = script.steps.filter { $0.packet.dir == .clientToServer }
        do { try await client.open(transport: script.transport) } catch {
            // Nothing of this conn will be sent: the others do not wait for it.
            await progress.sent(sends.map(\.seq))
            return (nil, "\(script.conn): cannot open a session: \(error)")
        }
        let expected = script.steps.filter { $0.packet.dir == .serverToClient }
        // A conn whose session a later one recovers was ended under its client in the capture: what
        // its server sends after the last recorded packet, before this replay ends it too, went to a
        // transport already gone (the server had not heard yet), and the recovering conn gets it
        // again. Those late packets are no difference; whether they are recovered is compared there.
        let endsUnderItsClient = recoveries.isRecoveredLater(script.conn)
        let received = Mutex<(packets: [PacketRecord], complete: Int?)>(([], expected.isEmpty ? 0 : nil))
        let collector = Task {
            var pending = expected
            for await packet in client.packets {
                let record = PacketRecord(packet, raw: SocketIOCodec.encode(packet).text, dir: .serverToClient, transport: script.transport.final)
                received.withLock { $0.packets.append(record) }
                if let index = pending.firstIndex(where: { PacketNormalizer.key($0.packet) == PacketNormalizer.key(record) }) {
                    let recorded = pending.remove(at: index)
                    if script.recovery { await recoveries.learn(recorded: recorded.packet, actual: record) }
                    await progress.satisfy(recorded.seq)
                    if pending.isEmpty { received.withLock { $0.complete = $0.packets.count } }
                }
            }
        }
        let timeout = Duration.milliseconds(options.timeoutMilliseconds)
        for step in sends {
            await progress.waitForAll(before: step.seq, timeout: timeout, exemption: order.exemptions[step.seq])
            await recoveries.waitForEnds(before: step.seq, except: script.conn, timeout: timeout)
            // Protocol v4 connects `/` by itself: a recorded CONNECT for it is the server's.
            if script.engineVersion == .v3, step.packet.type == .connect, step.packet.nsp == "/" {
                await progress.sent([step.seq])
                continue
            }
            var packet = SocketPacket(record: step.packet)
            if ConnectionObservation.recoveryPid(of: step.packet) != nil {
                // Asking a session back: once its conn has gone, with the pid and offset this run gave.
                if let earlier = script.recovers { await recoveries.waitForEnd(of: earlier, timeout: timeout) }
                packet.data = await recoveries.translate(packet.data)
            }
            client.send(packet)
            await progress.sent([step.seq])
        }
        if let last = expected.last { await progress.waitForAll(before: last.seq + 1, timeout: timeout, only: Set(expected.map(\.seq))) }
        // A transport's end, not a DISCONNECT: a session that is recovered later is kept by its server.
        client.close()
        await recoveries.ended(script.conn)
        try? await Task.sleep(for: .milliseconds(50))
        collector.cancel()
        let actual = received.withLock { received in
            endsUnderItsClient ? Array(received.packets.prefix(received.complete ?? received.packets.count)) : received.packets
        }
        var diff = ConnectionDiff.compare(conn: script.conn, expected: expected, actual: actual, normalizer: normalizer)
        // Which event each recorded ack answers, as the live view tells it.
        let asked = AckEvents()
        for (seq, packet) in script.steps {
            if let event = asked.take(packet, conn: script.conn) { diff.answered[seq] = event }
        }
        return (diff, nil)
    }
}

/// Connection-state recovery across a replay's conns: the pids and offsets this run's server gave
/// for the recorded ones, and the conns whose clients have gone.
actor Recoveries {
    private var pids: [String: String] = [:]
    private var offsets: [String: String] = [:]
    /// When each conn's client closed its transport.
    private var ended: [String: ContinuousClock.Instant] = [:]
    /// The conns that must end before later steps are sent, by the `seq` after which they end
    /// (empty: the capture has no recovery, no waiting).
    private let closes: [String: Int]
    /// How long a server takes to hear of a transport's end, at most, on loopback.
    private static let settling = Duration.milliseconds(100)

    init(closes: [String: Int]) { self.closes = closes }

    /// Whether a later conn asks this one's session back.
    nonisolated func isRecoveredLater(_ conn: String) -> Bool { closes[conn] != nil }

    /// Waits until every other such conn that ended before `seq` in the capture has ended here,
    /// and its server has had the time to hear of it.
    func waitForEnds(before seq: Int, except conn: String, timeout: Duration) async {
        let waited = closes.filter { $0.key != conn && $0.value < seq }.map(\.key)
        await waitForEnds(of: waited, timeout: timeout)
    }

    func waitForEnd(of conn: String, timeout: Duration) async {
        await waitForEnds(of: [conn], timeout: timeout)
    }

    private func waitForEnds(of conns: [String], timeout: Duration) async {
        guard !conns.isEmpty else { return }
        let deadline = ContinuousClock.now + timeout
        while !conns.allSatisfy({ ended[$0] != nil }) {
            guard ContinuousClock.now < deadline else { return }
            try? await Task.sleep(for: .milliseconds(5))
        }
        if let last = conns.compactMap({ ended[$0] }).max(), ContinuousClock.now < last + Self.settling {
            try? await Task.sleep(until: last + Self.settling)
        }
    }

    /// A recorded server packet and the one that came in its place.
    func learn(recorded: PacketRecord, actual: PacketRecord) {
        if recorded.type == .connect, let old = recorded.data?["pid"]?.stringValue, let new = actual.data?["pid"]?.stringValue {
            pids[old] = new
        }
        if PacketNormalizer.hasOffset(recorded), PacketNormalizer.hasOffset(actual),
            let old = recorded.args?.last?.stringValue, let new = actual.args?.last?.stringValue
        {
            offsets[old] = new
        }
    }

    /// A recovering CONNECT's payload with this run's pid and offset.
    func translate(_ data: JSONValue?) -> JSONValue? {
        guard case .object(var object)? = data else { return data }
        for index in object.members.indices {
            let key = object.members[index].key.value
            guard let old = object.members[index].value.stringValue else { continue }
            if key == "pid", let new = pids[old] { object.members[index].value = .string(new) }
            if key == "offset", let new = offsets[old] { object.members[index].value = .string(new) }
        }
        return .object(object)
    }

    func ended(_ conn: String) { ended[conn] = ContinuousClock.now }
}

/// Which recorded server packets have arrived, and which client packets have gone, across all
/// connections.
actor Progress {
    private var outstanding: Set<Int>
    private var unsent: Set<Int>
    /// Counts every packet that arrived and every client packet that went: a wait sees progress
    /// by it without scanning the sets each tick.
    private var moves = 0

    init(expected: [Int], sends: [Int] = []) {
        outstanding = Set(expected)
        unsent = Set(sends)
    }

    func satisfy(_ seq: Int) {
        if outstanding.remove(seq) != nil { moves += 1 }
    }

    /// A client packet was sent, or will never be (its conn could not open, or it is not sent on purpose).
    func sent(_ seqs: some Sequence<Int>) {
        for seq in seqs where unsent.remove(seq) != nil { moves += 1 }
    }

    /// Waits until every awaited packet recorded before `seq` (of `only`, when given; not those
    /// `exemption` excuses) has arrived, and the client packets `exemption` waits for have gone;
    /// or until `timeout` has passed with nothing arriving or going on any conn: a replay that is
    /// still moving is waited for, however long that takes.
    func waitForAll(before seq: Int, timeout: Duration, only: Set<Int>? = nil, exemption: CrossConnOrder.Exemption? = nil) async {
        var deadline = ContinuousClock.now + timeout
        var seen = moves
        while ContinuousClock.now < deadline {
            let blocked = outstanding.contains { $0 < seq && (only?.contains($0) ?? true) && !(exemption?.excused.contains($0) ?? false) }
                || (exemption.map { exemption in unsent.contains { $0 < exemption.sentBefore } } ?? false)
            if !blocked { return }
            if moves != seen {
                seen = moves
                deadline = ContinuousClock.now + timeout
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
}
