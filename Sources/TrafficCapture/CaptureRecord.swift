@_exported import SocketIOProtocol

/// One line of a capture file (format v1).
///
/// Every record has a ``seq`` (1, 2, 3… in file order), a ``ts`` (RFC 3339 UTC with microseconds),
/// its ``kind`` and, where a client connection applies, the recorder's ``conn`` id, which stays the
/// same across the polling-to-websocket upgrade. The fields of each kind follow, flattened into the
/// same JSON object. `docs/capture-format.md` describes every field.
///
/// Records are written by ``jsonLine`` alone (`CaptureRecord+Writing.swift`: the one place that
/// says the fields' order) and read through `Decodable`.
public struct CaptureRecord: Sendable, Hashable, Decodable {
    public var seq: Int
    public var ts: String
    public var conn: String?
    public var body: Body

    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        case session, engine, packet, jwt, close, error, fault, info, diagnosis, intervention
    }

    public enum Body: Sendable, Hashable {
        case session(SessionRecord)
        case engine(EngineRecord)
        case packet(PacketRecord)
        case jwt(JWTRecord)
        case close(CloseRecord)
        case error(ErrorRecord)
        case fault(FaultRecord)
        /// Worth keeping, not worth an error: a forward-mode tunnel that failed before any
        /// Engine.IO traffic (a browser's background services). Shaped as an error record.
        case info(ErrorRecord)
        /// A known failure worked out from the records before it (``DiagnosisRecord``).
        case diagnosis(DiagnosisRecord)
        /// What a person did to a live conn (``InterventionRecord``).
        case intervention(InterventionRecord)
    }

    public init(seq: Int = 0, ts: String = "", conn: String? = nil, _ body: Body) {
        self.seq = seq
        self.ts = ts
        self.conn = conn
        self.body = body
    }

    public var kind: Kind {
        switch body {
        case .session: .session
        case .engine: .engine
        case .packet: .packet
        case .jwt: .jwt
        case .close: .close
        case .error: .error
        case .fault: .fault
        case .info: .info
        case .diagnosis: .diagnosis
        case .intervention: .intervention
        }
    }

    private enum CodingKeys: String, CodingKey { case seq, ts, kind, conn }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        seq = try container.decode(Int.self, forKey: .seq)
        ts = try container.decode(String.self, forKey: .ts)
        conn = try container.decodeIfPresent(String.self, forKey: .conn)
        switch try container.decode(Kind.self, forKey: .kind) {
        case .session: body = .session(try SessionRecord(from: decoder))
        case .engine: body = .engine(try EngineRecord(from: decoder))
        case .packet: body = .packet(try PacketRecord(from: decoder))
        case .jwt: body = .jwt(try JWTRecord(from: decoder))
        case .close: body = .close(try CloseRecord(from: decoder))
        case .error: body = .error(try ErrorRecord(from: decoder))
        case .fault: body = .fault(try FaultRecord(from: decoder))
        case .info: body = .info(try ErrorRecord(from: decoder))
        case .diagnosis: body = .diagnosis(try DiagnosisRecord(from: decoder))
        case .intervention: body = .intervention(try InterventionRecord(from: decoder))
        }
    }
}

extension CaptureRecord {
    /// About how many bytes the record holds, for limits on what waits to be written.
    public var approximateSize: Int { body.approximateSize }
}

extension CaptureRecord.Body {
    /// About how many bytes the record holds: its raw text, decoded arguments and attachments
    /// count twice (they are held decoded and as text).
    public var approximateSize: Int {
        switch self {
        case .packet(let packet):
            2 * packet.raw.utf8.count + 2 * (packet.attachments?.reduce(0) { $0 + $1.utf8.count } ?? 0) + 256
        case .error(let error):
            error.message.utf8.count + (error.raw?.utf8.count ?? 0) + 256
        default:
            512
        }
    }
}
