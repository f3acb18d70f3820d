import SocketIOProtocol
import TrafficCapture

/// The HTTP/1.1 exchanges of one TCP connection, read off its two reassembled streams: requests
/// and responses paired in order (keep-alive and pipelining), bodies by `Content-Length` or
/// chunked, and after a 101 the WebSocket messages of both directions. Pure: stream events in,
/// conversation events out.
///
/// Which side is the client is learnt from the bytes (the side that sends a request line), so a
/// capture that starts mid-connection works. After a gap a side is lost until a request or
/// response line starts a new message at a line start; a WebSocket side stays lost (its frame
/// boundaries cannot be proven again).
public struct HTTPConversation {
    public struct Head: Sendable, Hashable {
        /// `GET /socket.io/?EIO=4... HTTP/1.1` or `HTTP/1.1 200 OK`, split.
        public var method: String
        public var target: String
        public var status: Int
        /// In wire order, names as sent.
        public var headers: [(name: String, value: String)]

        /// The first header of this name (given in lower case), compared without case.
        public func header(_ name: String) -> String? {
            headers.first { $0.name.count == name.count && $0.name.lowercased() == name }?.value
        }

        public static func == (lhs: Head, rhs: Head) -> Bool {
            lhs.method == rhs.method && lhs.target == rhs.target && lhs.status == rhs.status
                && lhs.headers.map(\.name) == rhs.headers.map(\.name) && lhs.headers.map(\.value) == rhs.headers.map(\.value)
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(method)
            hasher.combine(target)
            hasher.combine(status)
        }
    }

    public enum Event: Sendable, Hashable {
        case request(Head, body: [UInt8], time: Double)
        /// A response, with the request it answers (when that was captured).
        case response(Head, body: [UInt8], request: Head?, time: Double)
        /// A message (or close) of the WebSocket this connection became.
        case webSocket(WebSocketStreamReader.Event, fromClient: Bool, time: Double)
        /// The connection is a WebSocket whose upgrade the capture does not have: its messages
        /// follow (``FrameBoundary`` proved where they start).
        case webSocketWithoutUpgrade(time: Double)
        /// Something that could not be read: `code` is `pcap.gap`, `pcap.http`, …
        case problem(code: ErrorCode, message: String, fromClient: Bool?, time: Double)
        /// A side ended (FIN or RST).
        case ended(fromClient: Bool, reset: Bool, time: Double)

        public var time: Double {
            switch self {
            case .request(_, _, let time), .response(_, _, _, let time), .webSocket(_, _, let time), .problem(_, _, _, let time), .ended(_, _, let time),
                 .webSocketWithoutUpgrade(let time): time
            }
        }
    }

    /// Largest head or body read; beyond it the side is lost.
    public static let maxMessage = 64 << 20

    private var client: TCPReassembler.Side?
    // Two stored readers rather than a dictionary: hashing a side per segment showed in profiles.
    private var initiatorReader = Reader()
    private var responderReader = Reader()
    /// Requests waiting for their responses, oldest first.
    private var waiting: [Head] = []
    /// permessage-deflate, per side, when the 101 agreed to it.
    private var inflaters: [TCPReassembler.Side: Inflation.Messages] = [:]
    /// Sides whose compression window went with a gap: their compressed messages cannot be read.
    private var lostWindows: Set<TCPReassembler.Side> = []
    /// Whether a 101 was read, or a WebSocket found without one and said so.
    private var isWebSocket = false
    private let maxMessageSize: Int
    private let budget: InflationBudget

    /// `fromTheStart`: the capture has the connection from its SYN. When not, each side is read
    /// from the first request or response line, or the first segment of whole WebSocket frames
    /// (``FrameBoundary``), it can prove, quietly: what comes before is the end of a message the
    /// capture missed.
    public init(maxMessageSize: Int = HTTPConversation.maxMessage, fromTheStart: Bool = true, budget: InflationBudget = .unlimited) {
        self.budget = budget
        self.maxMessageSize = maxMessageSize
        if !fromTheStart {
            initiatorReader = Reader(mode: .lost, framesPossible: true)
            responderReader = Reader(mode: .lost, framesPossible: true)
        }
    }

    /// Whether the conversation knows its client yet, and which side that is.
    public var clientSide: TCPReassembler.Side? { client }

    private enum Mode: Sendable {
        case head
        case body(remaining: Int)
        case chunked(ChunkState)
        case untilClose
        case webSocket(WebSocketStreamReader)
        /// After a gap or bytes that are not HTTP: looking for the next message's first line.
        case lost
    }

    private enum ChunkState: Sendable {
        case size, data(Int), dataEnd, trailer
    }

    private struct Reader: Sendable {
        var mode: Mode = .head
        var buffer: [UInt8] = []
        var head: Head?
        var body: [UInt8] = []
        /// Client bytes after an upgrade request, held until the response says 101 or not.
        var awaitingUpgrade = false
        /// While lost, whether the stream may be a WebSocket's (the capture began after the
        /// upgrade could have happened, or a gap broke into one).
        var framesPossible = false
    }

    public mutating func receive(_ event: TCPReassembler.Event, from side: TCPReassembler.Side) -> [Event] {
        var events: [Event] = []
        switch event {
        case .data(let bytes, let time):
            var reader = takeReader(side)
            if case .lost = reader.mode, reader.framesPossible, resynchronise(&reader, at: bytes, side: side), !isWebSocket {
                isWebSocket = true
                events.append(.webSocketWithoutUpgrade(time: time))
            }
            // Shared, not copied, when nothing waits (a WebSocket reads it and lets it go).
            if reader.buffer.isEmpty { reader.buffer = bytes } else { reader.buffer += bytes }
            if client == nil { learnClient(from: reader.buffer, side: side) }
            read(&reader, side: side, time: time, into: &events)
            putBack(reader, side)
        case .gap(let length, let time):
            var reader = takeReader(side)
            let fromClient = client.map { $0 == side }
            events.append(.problem(code: .gap, message: "\(length) bytes of this stream are not in the capture", fromClient: fromClient, time: time))
            if case .webSocket = reader.mode {
                events.append(.problem(code: .gap, message: "the WebSocket is read again from the first segment that starts with whole frames", fromClient: fromClient, time: time))
                reader.framesPossible = true
                if let inflater = inflaters[side], inflater.takeover {
                    inflaters[side] = nil
                    lostWindows.insert(side)
                }
            }
            reader.mode = .lost
            reader.buffer = []
            reader.head = nil
            reader.body = []
            putBack(reader, side)
        case .end(let reset, let time):
            var reader = takeReader(side)
            if case .untilClose = reader.mode, let head = reader.head {
                events.append(.response(head, body: reader.body, request: waiting.isEmpty ? nil : waiting.removeFirst(), time: time))
                reader.head = nil
                reader.body = []
                reader.mode = .head
            }
            putBack(reader, side)
            events.append(.ended(fromClient: client.map { $0 == side } ?? (side == .initiator), reset: reset, time: time))
        }
        return events
    }

    private mutating func learnClient(from bytes: [UInt8], side: TCPReassembler.Side) {
        if Self.startsRequest(bytes[...]) {
            client = side
        } else if Self.startsResponse(bytes[...]) {
            client = side.other
        }
    }

    private mutating func read(_ reader: inout Reader, side: TCPReassembler.Side, time: Double, into events: inout [Event]) {
        let fromClient = client.map { $0 == side }
        while true {
            switch reader.mode {
            case .lost:
                guard let start = Self.messageStart(in: reader.buffer) else {
                    // Keep a line's worth: the next message may start in the next segment.
                    if reader.buffer.count > 8192 { reader.buffer.removeFirst(reader.buffer.count - 8192) }
                    return
                }
                reader.buffer.removeFirst(start)
                reader.mode = .head
                reader.framesPossible = false
                if client == nil { learnClient(from: reader.buffer, side: side) }
            case .head:
                if reader.awaitingUpgrade { return }
                guard let end = Self.headEnd(reader.buffer) else {
                    if reader.buffer.count > 65536 {
                        events.append(.problem(code: .notHTTP, message: "an HTTP head longer than 64 KB", fromClient: fromClient, time: time))
                        Self.skipMessage(&reader)
                        continue
                    }
                    return
                }
                guard let head = Self.parseHead(Array(reader.buffer[..<end])) else {
                    let text = String(decoding: reader.buffer.prefix(40), as: UTF8.self)
                    events.append(.problem(code: .notHTTP, message: "not an HTTP message: \(text.debugDescription)", fromClient: fromClient, time: time))
                    Self.skipMessage(&reader)
                    continue
                }
                reader.buffer.removeFirst(end + 4)
                reader.head = head
                reader.body = []
                let isResponse = head.status > 0
                let request = isResponse ? waiting.first : nil
                if let length = head.header("content-length").flatMap({ Int($0.trimmingSpaces) }) {
                    guard length >= 0, length <= maxMessageSize else {
                        events.append(.problem(code: .notHTTP, message: "a body of \(length) bytes, above the limit", fromClient: fromClient, time: time))
                        reader.mode = .lost
                        continue
                    }
                    reader.mode = .body(remaining: length)
                } else if head.header("transfer-encoding")?.lowercased().contains("chunked") == true {
                    reader.mode = .chunked(.size)
                } else if isResponse, head.status != 101, head.status != 204, head.status != 304, head.status >= 200, request?.method != "HEAD" {
                    reader.mode = .untilClose
                } else {
                    reader.mode = .body(remaining: 0)
                }
            case .body(let remaining):
                let take = min(remaining, reader.buffer.count)
                reader.body += reader.buffer[..<take]
                reader.buffer.removeFirst(take)
                if remaining - take > 0 {
                    reader.mode = .body(remaining: remaining - take)
                    return
                }
                complete(&reader, side: side, time: time, into: &events)
            case .chunked(let state):
                switch state {
                case .size:
                    guard let lineEnd = Self.lineEnd(reader.buffer) else { return }
                    let line = String(decoding: reader.buffer[..<lineEnd], as: UTF8.self)
                    reader.buffer.removeFirst(lineEnd + 2)
                    // A sign is no hex digit (Int(_:radix:) takes one): a negative size is refused, as
                    // a fuzzer showed it crashing the slice that followed.
                    guard let size = Int(line.split(separator: ";").first?.trimmingSpaces ?? "", radix: 16),
                          size >= 0, reader.body.count + size <= maxMessageSize
                    else {
                        events.append(.problem(code: .notHTTP, message: "a bad chunk size \(line.debugDescription)", fromClient: fromClient, time: time))
                        reader.mode = .lost
                        continue
                    }
                    reader.mode = .chunked(size == 0 ? .trailer : .data(size))
                case .data(let remaining):
                    let take = min(remaining, reader.buffer.count)
                    reader.body += reader.buffer[..<take]
                    reader.buffer.removeFirst(take)
                    if remaining - take > 0 {
                        reader.mode = .chunked(.data(remaining - take))
                        return
                    }
                    reader.mode = .chunked(.dataEnd)
                case .dataEnd:
                    guard reader.buffer.count >= 2 else { return }
                    reader.buffer.removeFirst(2)
                    reader.mode = .chunked(.size)
                case .trailer:
                    guard let lineEnd = Self.lineEnd(reader.buffer) else { return }
                    reader.buffer.removeFirst(lineEnd + 2)
                    if lineEnd == 0 { complete(&reader, side: side, time: time, into: &events) }
                }
            case .untilClose:
                reader.body += reader.buffer
                reader.buffer = []
                return
            case .webSocket(var frames):
                guard !reader.buffer.isEmpty else { return }
                var found: [WebSocketStreamReader.Event] = []
                frames.read(reader.buffer, into: &found)
                reader.buffer = []
                reader.mode = .webSocket(frames)
                let client = fromClient ?? (side == .initiator)
                for event in found {
                    guard case .compressed(let text, let bytes) = event else {
                        events.append(.webSocket(event, fromClient: client, time: time))
                        continue
                    }
                    guard let inflater = inflaters[side] else {
                        let message = lostWindows.contains(side)
                            ? "a compressed message after a gap: its compression window was lost with the gap"
                            : "a compressed message on a WebSocket that did not agree to permessage-deflate"
                        events.append(.problem(code: .inflate, message: message, fromClient: client, time: time))
                        continue
                    }
                    do {
                        let inflated = try inflater.inflate(bytes, maxMessageSize: maxMessageSize, budget: budget)
                        let message: WebSocketMessage = text ? .text(String(decoding: inflated, as: UTF8.self)) : .binary(inflated)
                        events.append(.webSocket(.message(message), fromClient: client, time: time))
                    } catch {
                        events.append(.problem(code: error.overBudget ? .inflateLimit : .inflate, message: error.description, fromClient: client, time: time))
                    }
                }
                return
            }
        }
    }

    /// A side's reader, taken out while it changes so that its buffers are not copied.
    private mutating func takeReader(_ side: TCPReassembler.Side) -> Reader {
        switch side {
        case .initiator:
            defer { initiatorReader = Reader() }
            return initiatorReader
        case .responder:
            defer { responderReader = Reader() }
            return responderReader
        }
    }

    private mutating func putBack(_ reader: Reader, _ side: TCPReassembler.Side) {
        switch side {
        case .initiator: initiatorReader = reader
        case .responder: responderReader = reader
        }
    }

    /// A lost side whose new segment proves a frame boundary is a WebSocket from that segment on;
    /// what was held before it is the rest of a frame the capture cut.
    private mutating func resynchronise(_ reader: inout Reader, at segment: [UInt8], side: TCPReassembler.Side) -> Bool {
        guard let proof = FrameBoundary.proof(segment, compressionAgreed: inflaters[side] != nil || lostWindows.contains(side)) else { return false }
        if let client, (client == side) != proof.masked { return false }
        client = proof.masked ? side : side.other
        reader.buffer = []
        reader.mode = .webSocket(WebSocketStreamReader(maxMessageSize: maxMessageSize))
        reader.framesPossible = false
        return true
    }

    /// Gives up the message at the front of the buffer: its first byte goes, so that looking for
    /// the next message cannot find this one again (found by fuzzing: a head with a line that is
    /// not a header was parsed, refused and found again forever).
    private static func skipMessage(_ reader: inout Reader) {
        if !reader.buffer.isEmpty { reader.buffer.removeFirst() }
        reader.mode = .lost
    }

    /// A whole message: a request is queued for its response; a response pairs with the oldest
    /// request, and a 101 turns both sides into WebSocket readers.
    private mutating func complete(_ reader: inout Reader, side: TCPReassembler.Side, time: Double, into events: inout [Event]) {
        guard let head = reader.head else { return }
        reader.head = nil
        var body = reader.body
        reader.body = []
        reader.mode = .head
        if let encoding = head.header("content-encoding"), !body.isEmpty {
            do { body = try Inflation.body(body, encoding: encoding, maxMessageSize: maxMessageSize, budget: budget) } catch {
                events.append(.problem(code: error.overBudget ? .inflateLimit : .inflate, message: error.description, fromClient: head.status == 0, time: time))
                // Past the budget the body is left out: its compressed bytes would only decode to noise.
                if error.overBudget { body = [] }
            }
        }
        if head.status == 0 {
            waiting.append(head)
            events.append(.request(head, body: body, time: time))
            if head.header("upgrade")?.lowercased() == "websocket" { reader.awaitingUpgrade = true }
            return
        }
        guard head.status >= 200 || head.status == 101 else { return }  // 1xx interim responses answer nothing
        let request = waiting.isEmpty ? nil : waiting.removeFirst()
        events.append(.response(head, body: body, request: request, time: time))
        let clientSide = side.other
        guard (clientSide == .initiator ? initiatorReader : responderReader).awaitingUpgrade else { return }
        var clientReader = takeReader(clientSide)
        clientReader.awaitingUpgrade = false
        if head.status == 101 {
            isWebSocket = true
            clientReader.mode = .webSocket(WebSocketStreamReader(maxMessageSize: maxMessageSize))
            reader.mode = .webSocket(WebSocketStreamReader(maxMessageSize: maxMessageSize))
            if let deflate = Inflation.negotiated(head.header("sec-websocket-extensions")) {
                inflaters[clientSide] = try? Inflation.Messages(takeover: deflate.clientTakeover)
                inflaters[side] = try? Inflation.Messages(takeover: deflate.serverTakeover)
            }
        }
        // What the client sent after its upgrade request is read now, as whatever it is.
        read(&clientReader, side: clientSide, time: time, into: &events)
        putBack(clientReader, clientSide)
    }

    // MARK: Bytes

    static let methods: [String] = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE"]
    /// `GET `, `POST `, …: looked for at every line start of a lost stream, so made once.
    private static let requestStarts = methods.map { Array(($0 + " ").utf8) }

    static func startsRequest(_ bytes: ArraySlice<UInt8>) -> Bool {
        requestStarts.contains { bytes.starts(with: $0) }
    }

    static func startsResponse(_ bytes: ArraySlice<UInt8>) -> Bool {
        bytes.starts(with: http1)
    }

    /// Where, after a line end (or at 0), a request or response line starts.
    static func messageStart(in bytes: [UInt8]) -> Int? {
        var index = 0
        while index < bytes.count {
            if index == 0 || (index >= 2 && bytes[index - 2] == 13 && bytes[index - 1] == 10) {
                let rest = bytes[index...]
                if startsRequest(rest) || startsResponse(rest), let lineEnd = lineEnd(Array(rest.prefix(8192))) {
                    let line = String(decoding: rest.prefix(lineEnd), as: UTF8.self)
                    if line.hasSuffix(" HTTP/1.1") || line.hasSuffix(" HTTP/1.0") || line.hasPrefix("HTTP/1.") { return index }
                }
            }
            index += 1
        }
        return nil
    }

    static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 0...(bytes.count - 4) where bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
            return index
        }
        return nil
    }

    static func lineEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 2 else { return nil }
        for index in 0...(bytes.count - 2) where bytes[index] == 13 && bytes[index + 1] == 10 { return index }
        return nil
    }

    /// A request line (`method` and `target` set, `status` 0) or a status line, and the headers.
    /// Read as bytes: every HTTP message of a capture goes through here.
    static func parseHead(_ bytes: [UInt8]) -> Head? {
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        var index = 0
        while index + 1 < bytes.count {
            if bytes[index] == 13 && bytes[index + 1] == 10 {
                lines.append(bytes[start..<index])
                start = index + 2
                index += 2
            } else {
                index += 1
            }
        }
        lines.append(bytes[start...])
        guard let first = lines.first else { return nil }
        let parts = first.split(separator: 32, maxSplits: 2, omittingEmptySubsequences: false)
        var head: Head
        if first.starts(with: Self.http1) {
            guard parts.count >= 2, let status = Int(String(decoding: parts[1], as: UTF8.self)) else { return nil }
            head = Head(method: "", target: "", status: status, headers: [])
        } else {
            guard parts.count == 3, parts[2].starts(with: Self.http1) else { return nil }
            let method = String(decoding: parts[0], as: UTF8.self)
            guard methods.contains(method) else { return nil }
            head = Head(method: method, target: String(decoding: parts[1], as: UTF8.self), status: 0, headers: [])
        }
        head.headers.reserveCapacity(lines.count - 1)
        for line in lines.dropFirst() where !line.isEmpty {
            guard let colon = line.firstIndex(of: 58) else { return nil }
            let name = String(decoding: line[..<colon], as: UTF8.self)
            var value = line[(colon + 1)...]
            while let first = value.first, first == 32 || first == 9 { value = value.dropFirst() }
            while let last = value.last, last == 32 || last == 9 { value = value.dropLast() }
            head.headers.append((name, String(decoding: value, as: UTF8.self)))
        }
        return head
    }

    private static let http1 = Array("HTTP/1.".utf8)
}
