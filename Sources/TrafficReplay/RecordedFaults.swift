public import TrafficCapture

/// The faults a capture recorded (`siotap proxy --fault`), by the packet they applied to: what
/// replay and mock need to play "the session where the ack got lost" again (`--with-faults`),
/// the same packets faulted, whatever the rules' odds were. People's interventions on live conns
/// (held packets dropped or edited) count as faults.
public struct RecordedFaults: Sendable {
    private var byPacket: [Int: [FaultRecord]] = [:]
    /// A timed disconnect's time (seconds since 1970), by conn.
    private var timedCuts: [String: Double] = [:]
    /// The engine version of each conn, to read rewritten packets.
    private var versions: [String: SocketIOVersion] = [:]
    /// What people did to held packets (`intervention` records), by the packet.
    private var interventions: [Int: [InterventionRecord]] = [:]

    public init(_ records: [CaptureRecord]) {
        for record in records {
            switch record.body {
            case .session(let session): if let conn = record.conn { versions[conn] = SocketIOVersion(engine: session.eio) }
            case .intervention(let intervention):
                if let packet = intervention.packet { interventions[packet, default: []].append(intervention) }
            case .fault(let fault):
                if let packet = fault.packet {
                    byPacket[packet, default: []].append(fault)
                } else if fault.action == .disconnect, let conn = record.conn, let time = RFC3339.parse(record.ts) {
                    timedCuts[conn] = min(timedCuts[conn] ?? time, time)
                }
            default: break
            }
        }
    }

    public var isEmpty: Bool { byPacket.isEmpty && timedCuts.isEmpty && interventions.isEmpty }

    /// The packet as it went on from the proxy: nil when it was dropped (or a refused CONNECT),
    /// the rewritten form when it was rewritten.
    public func delivered(_ packet: PacketRecord, seq: Int, conn: String) -> PacketRecord? {
        let actions = interventions[seq] ?? []
        if actions.contains(where: { $0.action == .drop || $0.action == .answer }) { return nil }
        if let edit = actions.last(where: { $0.action == .edit }), let raw = edit.raw {
            return Self.packet(raw, attachments: edit.attachments, version: versions[conn] ?? .v5, like: packet)
        }
        let faults = byPacket[seq] ?? []
        if faults.contains(where: { $0.action == .drop || $0.action == .refuseConnect }) { return nil }
        guard let rewrite = faults.last(where: { $0.action == .rewrite && $0.raw != nil }), let raw = rewrite.raw,
            let rewritten = Self.packet(raw, attachments: packet.attachments, version: versions[conn] ?? .v5, like: packet)
        else { return packet }
        return rewritten
    }

    /// What the proxy answered a refused CONNECT with, in its stead.
    public func refusal(of seq: Int, conn: String, like packet: PacketRecord) -> PacketRecord? {
        guard let fault = byPacket[seq]?.first(where: { $0.action == .refuseConnect }), let raw = fault.raw else { return nil }
        var answer = Self.packet(raw, attachments: nil, version: versions[conn] ?? .v5, like: packet)
        answer?.dir = .serverToClient
        return answer
    }

    /// Seconds the packet was held (delays and throttles).
    public func delay(of seq: Int) -> Double {
        (byPacket[seq] ?? []).compactMap(\.delayMilliseconds).reduce(0, +) / 1000
    }

    /// Whether the conn was cut once this packet had passed.
    public func cutsAfter(_ seq: Int) -> Bool {
        (byPacket[seq] ?? []).contains { $0.action == .disconnect }
    }

    /// When a timed disconnect cut the conn (seconds since 1970).
    public func timedCut(of conn: String) -> Double? { timedCuts[conn] }

    /// The packet an `emit` intervention sent, as its record would read.
    public static func emitted(_ intervention: InterventionRecord, version: SocketIOVersion, transport: EngineTransport) -> PacketRecord? {
        guard intervention.action == .emit, let raw = intervention.raw else { return nil }
        let like = PacketRecord(dir: intervention.dir, transport: transport, type: .event, nsp: "/", raw: raw)
        return packet(raw, attachments: intervention.attachments, version: version, like: like)
    }

    /// The packets that answered an emit of the proxy's: they never reached the peer.
    public static func answers(in records: [CaptureRecord]) -> Set<Int> {
        Set(records.compactMap { record in
            guard case .intervention(let intervention) = record.body, intervention.action == .answer else { return nil }
            return intervention.packet
        })
    }

    private static func packet(_ raw: String, attachments: [String]?, version: SocketIOVersion, like original: PacketRecord) -> PacketRecord? {
        var decoder = SocketIODecoder(version: version)
        do {
            var completed = try decoder.decode(text: raw)
            for attachment in attachments ?? [] where completed == nil {
                guard let bytes = Base64.decode(attachment) else { return nil }
                completed = try decoder.decode(binary: bytes)
            }
            guard let completed else { return nil }
            return PacketRecord(completed, raw: raw, dir: original.dir, transport: original.transport)
        } catch {
            return nil
        }
    }
}
