public import TrafficCapture

/// The faults a capture recorded (`siotap proxy --fault`), by the packet they applied to: what
/// replay and mock need to play "the session where the ack got lost" again (`--with-faults`),
/// the same packets faulted, whatever the rules' odds were.
public struct RecordedFaults: Sendable {
    private var byPacket: [Int: [FaultRecord]] = [:]
    /// A timed disconnect's time (seconds since 1970), by conn.
    private var timedCuts: [String: Double] = [:]
    /// The engine version of each conn, to read rewritten packets.
    private var versions: [String: SocketIOVersion] = [:]

    public init(_ records: [CaptureRecord]) {
        for record in records {
            switch record.body {
            case .session(let session): if let conn = record.conn { versions[conn] = SocketIOVersion(engine: session.eio) }
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

    public var isEmpty: Bool { byPacket.isEmpty && timedCuts.isEmpty }

    /// The packet as it went on from the proxy: nil when it was dropped (or a refused CONNECT),
    /// the rewritten form when it was rewritten.
    public func delivered(_ packet: PacketRecord, seq: Int, conn: String) -> PacketRecord? {
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
