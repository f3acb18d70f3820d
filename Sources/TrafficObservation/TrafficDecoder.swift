public import TrafficCapture
/// Turns the frames of one connection into capture records, both directions.
///
/// A pure state machine: feed it what a transport saw (a polling body, a WebSocket message) and it
/// returns the records, in order. It keeps, per direction, the Socket.IO decoder that joins
/// binary attachments, so a BINARY_EVENT and its attachments may arrive in separate frames or
/// bodies. A frame that fails to decode becomes an ``ErrorRecord`` and decoding carries on with
/// the next one. Tokens in CONNECT payloads are returned as ``TokenSighting``s for the caller to
/// inspect (verification is asynchronous, decoding is not).
public struct TrafficDecoder: Sendable {
    public let engineVersion: EngineIOVersion
    /// The session's parser: given, or told by its first Socket.IO packet (a msgpack map in a
    /// binary message, or text); nil until then.
    public private(set) var parser: SocketIOParser?
    private var decoders: PerDirection<SocketIODecoder>
    /// The wire text of a binary packet whose attachments are still arriving, per direction.
    private var pendingRaw = PerDirection<String?>(nil)

    /// What a transport saw.
    public enum Frame: Sendable, Hashable {
        /// A whole HTTP long-polling body (a POST's, or a GET response's).
        case pollingBody([UInt8])
        case webSocket(WebSocketMessage)
        /// One packet of a polling body, already split (the proxy decides on each with `--fault`).
        case polledPacket(EnginePacket)

        /// About the bytes it holds (what a queue of frames is bounded by).
        public var size: Int {
            switch self {
            case .pollingBody(let body): body.count
            case .webSocket(.text(let text)): text.utf8.count
            case .webSocket(.binary(let bytes)): bytes.count
            case .polledPacket(let packet):
                switch packet.payload {
                case .none: 0
                case .text(let text): text.utf8.count
                case .binary(let bytes): bytes.count
                }
            }
        }
    }

    /// A token found while decoding, to be inspected by ``JWTInspection``.
    public struct TokenSighting: Sendable, Hashable {
        public var source: TokenSource
        public var nsp: String?
        public var token: String
    }

    public struct Output: Sendable {
        public var records: [CaptureRecord.Body] = []
        public var tokens: [TokenSighting] = []
        /// The JSON of this frame's open packet, if it had one (the session's sid and heartbeat).
        public var openText: String?
        /// Whether this frame had an Engine.IO message packet (a Socket.IO packet, or a part of one).
        public var hadMessage = false
        /// Set when this frame told the session's parser.
        public var parserFound: SocketIOParser?

        public init() {}
    }

    /// - Parameter parser: the session's parser when known; nil: told by the first packet.
    public init(
        engineVersion: EngineIOVersion, parser: SocketIOParser? = nil, maxAttachments: Int = SocketIOCodec.defaultMaxAttachments,
        maxAttachmentBytes: Int = SocketIOCodec.defaultMaxAttachmentBytes
    ) {
        self.engineVersion = engineVersion
        self.parser = parser
        let decoder = SocketIODecoder(version: SocketIOVersion(engine: engineVersion), maxAttachments: maxAttachments, maxAttachmentBytes: maxAttachmentBytes)
        decoders = PerDirection(decoder)
    }

    /// A binary packet still waiting for attachments: what input cut at this point leaves unfinished.
    public struct Incomplete: Sendable, Hashable, CustomStringConvertible {
        public var dir: Direction
        public var type: SocketPacketType
        public var missing: Int

        public var description: String {
            "incomplete: \(type.name) waits for \(missing) attachment\(missing == 1 ? "" : "s")"
        }
    }

    /// The binary packets still waiting for attachments, client's first.
    public var incomplete: [Incomplete] {
        [Direction.clientToServer, .serverToClient].compactMap { dir in
            let decoder = decoders[dir]
            guard let type = decoder.waitingType else { return nil }
            return Incomplete(dir: dir, type: type, missing: decoder.missingAttachments)
        }
    }

    public mutating func decode(_ frame: Frame, dir: Direction) -> Output {
        var output = Output()
        switch frame {
        case .pollingBody(let body):
            // Flask-SocketIO and other python-engineio deployments answer a long-poll that the
            // session's end cut short with an empty body: no packets, not a malformed payload.
            if body.isEmpty, dir == .serverToClient { return output }
            do {
                for packet in try EngineIOCodec.decodePayload(body, version: engineVersion) {
                    handle(packet, dir: dir, transport: .polling, into: &output)
                }
            } catch {
                output.records.append(.error(ErrorRecord(dir: dir, code: ErrorCode(error.code), message: error.description, raw: Self.rawText(body))))
            }
        case .polledPacket(let packet):
            handle(packet, dir: dir, transport: .polling, into: &output)
        case .webSocket(let message):
            do {
                handle(try EngineIOCodec.decode(message, version: engineVersion), dir: dir, transport: .websocket, into: &output)
            } catch {
                let raw: String
                switch message {
                case .text(let text): raw = text
                case .binary(let bytes): raw = "base64:" + Base64.encode(bytes)
                }
                output.records.append(.error(ErrorRecord(dir: dir, code: ErrorCode(error.code), message: error.description, raw: raw)))
            }
        }
        return output
    }

    private mutating func handle(_ packet: EnginePacket, dir: Direction, transport: EngineTransport, into output: inout Output) {
        guard packet.type == .message else {
            if packet.type == .open { output.openText = packet.text }
            var data: JSONValue?
            if let text = packet.text {
                data = packet.type == .open ? ((try? JSONValue.parse(text)) ?? .string(text)) : .string(text)
            }
            output.records.append(.engine(EngineRecord(dir: dir, transport: transport, type: packet.type, data: data)))
            return
        }
        output.hadMessage = true
        if parser == nil {
            switch packet.payload {
            case .binary(let bytes) where !decoders[dir].isReconstructing && SocketIOMsgPack.looksLikePacket(bytes): parser = .msgpack
            case .binary: break
            default: parser = .json
            }
            output.parserFound = parser
        }
        if parser == .msgpack { return handleMsgPack(packet, dir: dir, transport: transport, into: &output) }
        do {
            let completed: SocketPacket?
            var raw: String
            switch packet.payload {
            case .binary(let bytes):
                raw = pendingRaw[dir] ?? ""
                completed = try decoders[dir].decode(binary: bytes)
            case .text(let text):
                if decoders[dir].isReconstructing {
                    // An observer must not lose the new packet: report the broken one and move on.
                    let missing = decoders[dir].missingAttachments
                    output.records.append(.error(ErrorRecord(
                        dir: dir, code: .missingAttachments,
                        message: "got plaintext data when reconstructing a packet (\(missing) attachment(s) never came)",
                        raw: pendingRaw[dir])))
                    decoders[dir].reset()
                }
                raw = text
                completed = try decoders[dir].decode(text: text)
                if completed == nil { pendingRaw[dir] = text }
            case .none:
                raw = ""
                completed = try decoders[dir].decode(text: "")
            }
            guard let socketPacket = completed else { return }
            pendingRaw[dir] = nil
            output.records.append(.packet(PacketRecord(socketPacket, raw: raw, dir: dir, transport: transport)))
            if socketPacket.type == .connect, dir == .clientToServer {
                Self.findTokens(in: socketPacket, into: &output.tokens)
            }
        } catch {
            let raw: String
            switch packet.payload {
            case .binary where error.code == .attachmentsTooLarge:
                // The packet's own text: the attachment that tipped it over the limit (up to a
                // message's size) is not encoded only to be dropped.
                raw = pendingRaw[dir] ?? ""
                pendingRaw[dir] = nil
            case .text(let text): raw = text
            case .binary(let bytes): raw = "base64:" + Base64.encode(bytes)
            case .none: raw = ""
            }
            if error.code == .illegalPlaceholder { pendingRaw[dir] = nil }
            output.records.append(.error(ErrorRecord(dir: dir, code: ErrorCode(error.code), message: error.description, raw: raw)))
        }
    }

    /// A packet of a msgpack session: one binary message, one packet. Its `raw` is `base64:` and
    /// the message's bytes; its binary values are listed in `attachments` too, as a JSON session's
    /// are, so readers take `{"$binary": ...}` back as binary.
    private mutating func handleMsgPack(_ packet: EnginePacket, dir: Direction, transport: EngineTransport, into output: inout Output) {
        guard case .binary(let bytes) = packet.payload else {
            output.records.append(.error(ErrorRecord(
                dir: dir, code: .invalidMsgPack, message: "a text message in a msgpack session", raw: packet.text ?? "")))
            return
        }
        let raw = "base64:" + Base64.encode(bytes)
        do {
            let socketPacket = try SocketIOMsgPack.decode(bytes)
            var record = PacketRecord(socketPacket, raw: raw, dir: dir, transport: transport)
            var binaries: [[UInt8]] = []
            socketPacket.data?.collectBinaries(into: &binaries)
            if !binaries.isEmpty { record.attachments = binaries.map { Base64.encode($0) } }
            output.records.append(.packet(record))
            if socketPacket.type == .connect, dir == .clientToServer { Self.findTokens(in: socketPacket, into: &output.tokens) }
        } catch {
            output.records.append(.error(ErrorRecord(dir: dir, code: ErrorCode(error.code), message: error.description, raw: raw)))
        }
    }

    /// Every string in a CONNECT payload (at any depth) that is a JWT, and a v4 namespace query's.
    static func findTokens(in packet: SocketPacket, into tokens: inout [TokenSighting]) {
        func walk(_ value: JSONValue, path: String) {
            switch value {
            case .string(let string):
                let text = string.value
                if let token = JWTCandidate.token(in: text) {
                    tokens.append(TokenSighting(source: .auth(path: path), nsp: packet.namespace, token: token))
                }
            case .object(let object):
                for member in object.members { walk(member.value, path: path + "." + member.key.value) }
            case .array(let items):
                for (index, item) in items.enumerated() { walk(item, path: path + "[\(index)]") }
            default: break
            }
        }
        if let data = packet.data { walk(data, path: "") }
        if let query = packet.query {
            for (name, value) in QueryString.pairs(query) {
                if let token = JWTCandidate.token(in: value) {
                    tokens.append(TokenSighting(source: .query(name: name), nsp: packet.namespace, token: token))
                }
            }
        }
    }

    private static func rawText(_ body: [UInt8]) -> String {
        String(validating: body, as: UTF8.self) ?? "base64:" + Base64.encode(body)
    }
}
