import SocketIOServer
import JWTInspection
import Synchronization
public import TrafficCapture

/// Plays the recorded server side of a capture to real clients (`siotap mock`).
///
/// Each new session plays the recorded conn whose first client packet matches its own (a CONNECT's
/// tokens compared by their claims, times aside), or, when the recording starts with server
/// packets (protocol v4 connects `/` unasked), the next conn not yet played. A client packet that
/// matches the next recorded one (type, namespace, event, payload modulo ignore rules; a CONNECT by
/// namespace only) is answered with the server packets recorded after it, at their recorded
/// delays; server packets recorded before any client packet are pushed at their recorded offsets.
/// Acks are renumbered to the client's ids. An unmatched packet is reported, and with `strict`
/// ends the session.
public final class MockServer: Sendable {
    public struct Options: Sendable {
        public var ignoredPaths: [String]
        public var strict: Bool
        /// The longest recorded delay kept (seconds); longer pauses are cut to this.
        public var maxDelay: Double
        /// Play the capture's `fault` records again, as the client lived them: dropped server
        /// packets are not sent, rewritten ones go rewritten, delayed ones late, a refused CONNECT
        /// gets the proxy's CONNECT_ERROR, and a cut conn is closed where it was cut. Off, fault
        /// records are ignored and the server's packets are played as the server sent them.
        public var withFaults: Bool

        public init(ignoredPaths: [String] = [], strict: Bool = false, maxDelay: Double = 5, withFaults: Bool = false) {
            self.ignoredPaths = ignoredPaths
            self.strict = strict
            self.maxDelay = maxDelay
            self.withFaults = withFaults
        }
    }

    struct Step {
        var packet: PacketRecord
        var time: Double
        /// The conn was cut once this packet had passed (`--with-faults`).
        var cutsAfter = false
    }

    struct Script {
        var conn: String
        var start: Double
        var steps: [Step]
    }

    private let scripts: [Script]
    private let options: Options
    /// The capture's parser: a msgpack capture is played in msgpack.
    private let parser: SocketIOParser
    private let report: @Sendable (String) -> Void
    private let taken = Mutex<Set<Int>>([])
    private let endpoint = Mutex<EngineEndpoint?>(nil)

    public init(_ records: [CaptureRecord], options: Options = Options(), report: @escaping @Sendable (String) -> Void) {
        let faults = options.withFaults ? RecordedFaults(records) : nil
        // Answers to the proxy's own emits: a server's never reached the client, and a client's
        // comes only when the emit is played too.
        let answers = RecordedFaults.answers(in: records)
        var versions: [String: SocketIOVersion] = [:]
        var byConn: [String: Script] = [:]
        var order: [String] = []
        for record in records.sorted(by: { $0.seq < $1.seq }) {
            guard let conn = record.conn else { continue }
            let time = RFC3339.parse(record.ts) ?? 0
            if byConn[conn] == nil {
                byConn[conn] = Script(conn: conn, start: time, steps: [])
                order.append(conn)
            }
            if case .session(let session) = record.body { versions[conn] = SocketIOVersion(engine: session.eio) }
            if faults != nil, case .intervention(let intervention) = record.body, intervention.dir == .serverToClient,
                let packet = RecordedFaults.emitted(intervention, version: versions[conn] ?? .v5, transport: .websocket)
            {
                // With --with-faults, what the proxy sent the client in the server's name is played too.
                byConn[conn]!.steps.append(Step(packet: packet, time: time))
                continue
            }
            guard case .packet(let packet) = record.body else { continue }
            if answers.contains(record.seq), packet.dir == .serverToClient || faults == nil { continue }
            guard let faults else {
                byConn[conn]!.steps.append(Step(packet: packet, time: time))
                continue
            }
            if packet.dir == .clientToServer {
                // The client's packets are matched as it sent them; a refused CONNECT is answered by
                // the proxy's CONNECT_ERROR.
                byConn[conn]!.steps.append(Step(packet: packet, time: time, cutsAfter: faults.cutsAfter(record.seq)))
                if let refusal = faults.refusal(of: record.seq, conn: conn, like: packet) {
                    byConn[conn]!.steps.append(Step(packet: refusal, time: time))
                }
            } else if let delivered = faults.delivered(packet, seq: record.seq, conn: conn) {
                byConn[conn]!.steps.append(Step(packet: delivered, time: time + faults.delay(of: record.seq), cutsAfter: faults.cutsAfter(record.seq)))
            }
        }
        if let faults {
            // A timed cut ends the conn after the last packet recorded before it.
            for conn in order {
                guard let cut = faults.timedCut(of: conn), let last = byConn[conn]!.steps.lastIndex(where: { $0.time <= cut }) else { continue }
                byConn[conn]!.steps[last].cutsAfter = true
                byConn[conn]!.steps.removeSubrange((last + 1)...)
            }
        }
        scripts = order.compactMap { byConn[$0] }.filter { !$0.steps.isEmpty }
        parser = Replayer.parser(of: records)
        self.options = options
        self.report = report
    }

    public var connectionCount: Int { scripts.count }

    public func start(host: String = "127.0.0.1", port: Int = 0) async throws -> Int {
        let server = EngineEndpoint { [weak self] connection in await self?.play(connection) }
        endpoint.withLock { $0 = server }
        return try await server.start(host: host, port: port)
    }

    public func shutdown() async { await endpoint.withLock { $0 }?.shutdown() }

    /// The conn this session plays: chosen by its first packet, or up front when the recording
    /// starts with server packets.
    private func claim(firstPacket: PacketRecord?) -> Script? {
        taken.withLock { taken in
            let free = scripts.indices.filter { !taken.contains($0) }
            let pool = free.isEmpty ? Array(scripts.indices) : free
            let chosen: Int?
            if let firstPacket {
                let fingerprint = Self.fingerprint(firstPacket)
                chosen = pool.first { index in
                    scripts[index].steps.first.map { $0.packet.dir == .clientToServer && Self.fingerprint($0.packet) == fingerprint } ?? false
                } ?? pool.first { scripts[$0].steps.first?.packet.dir == .clientToServer }
            } else {
                chosen = pool.first { scripts[$0].steps.first?.packet.dir == .serverToClient }
            }
            guard let chosen else { return nil }
            taken.insert(chosen)
            return scripts[chosen]
        }
    }

    /// A first packet's identity: key and payload, each token by its claims without times.
    static func fingerprint(_ packet: PacketRecord) -> String {
        func strip(_ value: JSONValue) -> JSONValue {
            switch value {
            case .string(let string):
                guard let claims = JWTText.parts(of: string.value)?.claims.objectValue else { return value }
                return .object(JSONObject(claims.members.filter { !["exp", "iat", "nbf"].contains($0.key.value) }))
            case .array(let items): return .array(items.map(strip))
            case .object(let object): return .object(JSONObject(object.members.map { .init(key: $0.key, value: strip($0.value)) }))
            default: return value
            }
        }
        return PacketNormalizer.key(packet) + " " + strip(packet.data ?? .array(packet.args ?? [])).jsonText
    }

    private func play(_ connection: EngineConnection) async {
        guard !scripts.isEmpty else { return await connection.close() }
        let normalizer = PacketNormalizer(ignoredPaths: options.ignoredPaths)
        var codec = SocketIOPacketCodec(parser: parser, version: SocketIOVersion(engine: connection.version))
        var pending: [Task<Void, Never>] = []
        var script: Script?
        var cursor = 0
        func start(_ chosen: Script) {
            script = chosen
            // Pushes recorded before the client said anything.
            let pushes = chosen.steps.prefix { $0.packet.dir == .serverToClient }
            cursor = pushes.count
            pending.append(Task { await self.send(Array(pushes), after: chosen.start, to: connection, ackIDs: [:]) })
        }
        if connection.version == .v3, let chosen = claim(firstPacket: nil) { start(chosen) }
        for await message in connection.messages {
            let decoded: SocketPacket?
            do {
                decoded = try codec.decode(message.payload)
            } catch {
                report("\(script?.conn ?? "?"): a packet that does not decode: \(error)")
                continue
            }
            guard let packet = decoded else { continue }
            let received = PacketRecord(packet, raw: SocketIOCodec.encode(packet).text, dir: .clientToServer, transport: .websocket)
            if script == nil, let chosen = claim(firstPacket: received) { start(chosen) }
            guard let script else {
                report("no recorded conn starts with \(PacketNormalizer.key(received))")
                await connection.close()
                break
            }
            guard cursor < script.steps.count, script.steps[cursor].packet.dir == .clientToServer,
                Self.matches(script.steps[cursor].packet, received, normalizer: normalizer)
            else {
                report("\(script.conn): unmatched \(PacketNormalizer.key(received)) \(normalizer.normalize(received).jsonText)")
                if options.strict {
                    await connection.close()
                    break
                }
                continue
            }
            let trigger = script.steps[cursor]
            cursor += 1
            let replies = Array(script.steps[cursor...].prefix { $0.packet.dir == .serverToClient })
            cursor += replies.count
            var ackIDs: [UInt64: UInt64] = [:]
            if let recorded = trigger.packet.id, let actual = packet.ackID { ackIDs[recorded] = actual }
            if trigger.cutsAfter {
                await connection.close()
                break
            }
            pending.append(Task { await self.send(replies, after: trigger.time, to: connection, ackIDs: ackIDs) })
        }
        for task in pending { task.cancel() }
    }

    static func matches(_ recorded: PacketRecord, _ received: PacketRecord, normalizer: PacketNormalizer) -> Bool {
        guard PacketNormalizer.key(recorded) == PacketNormalizer.key(received) else { return false }
        if recorded.type == .connect { return true }  // tokens and sids differ on every run
        return ConnectionDiff.differences(normalizer.normalize(recorded), normalizer.normalize(received), path: "").isEmpty
    }

    private func send(_ steps: [Step], after reference: Double, to connection: EngineConnection, ackIDs: [UInt64: UInt64]) async {
        var elapsed = 0.0
        for step in steps {
            let delay = min(options.maxDelay, max(0, step.time - reference)) - elapsed
            if delay > 0.001 {
                try? await Task.sleep(for: .milliseconds(Int(delay * 1000)))
                elapsed += delay
            }
            guard !Task.isCancelled else { return }
            var packet = SocketPacket(record: step.packet)
            if let id = packet.ackID, packet.type.isAck { packet.ackID = ackIDs[id] ?? id }
            await connection.send(SocketIOPacketCodec(parser: parser, version: SocketIOVersion(engine: connection.version)).encode(packet))
            if step.cutsAfter {
                await connection.close()
                return
            }
        }
    }
}
