public import TrafficCapture
public import SocketIOProtocol

/// What a recorder knows of one conn's traffic (the proxy's live, `siotap import`'s from a
/// capture): its decoder, the sid its open packet told, the events waiting for their acks, and the
/// tokens already reported. A value: ``observe(_:dir:now:)`` takes a frame and the time and
/// returns the records, with each ack's latency filled in.
public struct ConnectionObservation: Sendable {
    /// An event waiting for its ack: acks answer in the other direction, on the same namespace,
    /// with the same id.
    public struct AckKey: Hashable, Sendable {
        var dir: Direction
        var nsp: String
        var id: UInt64
    }

    /// Events whose ack never comes must not pile up on a long-lived socket: past this many, those
    /// older than ``ackHorizon`` seconds are forgotten.
    public static let pendingAckLimit = 10_000
    public static let ackHorizon = 300.0

    public private(set) var decoder: TrafficDecoder
    /// Learned from the server's open packet.
    public private(set) var sid: String?
    /// pingInterval + pingTimeout, in seconds, from the open packet: a polling session with no
    /// request for that long has been ended by its server.
    public private(set) var heartbeatWindow: Double?
    public private(set) var pendingAcks: [AckKey: Double] = [:]
    private var reportedTokens: Set<String> = []
    /// Connection-state recovery: the pid a client's CONNECT asked back, by namespace, until the
    /// server answers.
    private var askedPids: [String: String] = [:]

    /// - Parameter maxAttachmentBytes: the most a binary packet's attachments may weigh together.
    public init(engineVersion: EngineIOVersion, parser: SocketIOParser? = nil, maxAttachmentBytes: Int = SocketIOCodec.defaultMaxAttachmentBytes) {
        decoder = TrafficDecoder(engineVersion: engineVersion, parser: parser, maxAttachmentBytes: maxAttachmentBytes)
    }

    /// Decodes a frame seen at `now` (seconds since 1970). `learnedSid` is set when this frame's
    /// open packet told the session id for the first time.
    public mutating func observe(_ frame: TrafficDecoder.Frame, dir: Direction, now: Double) -> (output: TrafficDecoder.Output, learnedSid: String?) {
        var output = decoder.decode(frame, dir: dir)
        if pendingAcks.count > Self.pendingAckLimit {
            pendingAcks = pendingAcks.filter { $0.value > now - Self.ackHorizon }
        }
        var learnedSid: String?
        if let text = output.openText, let handshake = try? EngineHandshake(json: text), handshake.sid != sid {
            sid = handshake.sid
            learnedSid = handshake.sid
            heartbeatWindow = Double(handshake.pingInterval + handshake.pingTimeout) / 1000
        }
        for index in output.records.indices {
            guard case .packet(var record) = output.records[index] else { continue }
            if record.type == .connect {
                if dir == .clientToServer, let pid = Self.recoveryPid(of: record) {
                    askedPids[record.nsp] = pid
                } else if dir == .serverToClient, let asked = askedPids.removeValue(forKey: record.nsp) {
                    record.recovered = record.data?["pid"]?.stringValue == asked
                    output.records[index] = .packet(record)
                }
            } else if let id = record.id {
                if record.type.isEvent {
                    pendingAcks[AckKey(dir: dir, nsp: record.nsp, id: id)] = now
                } else if record.type.isAck, let sent = pendingAcks.removeValue(forKey: AckKey(dir: dir.reversed, nsp: record.nsp, id: id)) {
                    record.latencyMilliseconds = ((now - sent) * 1_000_000).rounded() / 1000
                    output.records[index] = .packet(record)
                }
            }
        }
        return (output, learnedSid)
    }

    /// The sid a handshake's answer tells (its first packet, the open packet), read without an
    /// observation: for an owner that must file it before the answer's records are made.
    public static func handshakeSid(in frame: TrafficDecoder.Frame, engineVersion: EngineIOVersion) -> String? {
        let open: EnginePacket?
        switch frame {
        case .pollingBody(let body): open = (try? EngineIOCodec.decodePayload(body, version: engineVersion))?.first
        case .webSocket(let message): open = try? EngineIOCodec.decode(message, version: engineVersion)
        case .polledPacket(let packet): open = packet
        }
        guard let open, open.type == .open, let text = open.text else { return nil }
        return (try? EngineHandshake(json: text))?.sid
    }

    /// The pid a client's CONNECT asks back (connection-state recovery: `pid` and `offset` strings).
    public static func recoveryPid(of record: PacketRecord) -> String? {
        guard record.type == .connect, let data = record.data, data["offset"]?.stringValue != nil else { return nil }
        return data["pid"]?.stringValue
    }

    /// Whether this token, from this source and namespace, is new to the conn (it is reported once).
    public mutating func firstSighting(of token: String, source: TokenSource, nsp: String?) -> Bool {
        reportedTokens.insert("\(source)|\(nsp ?? "")|\(token)").inserted
    }
}
