import SocketIOProtocol
import Testing
import TrafficCapture

@testable import TrafficImport

/// WebSockets the capture joined after their upgrade, or lost bytes of: read again from the first
/// segment that proves a frame boundary, never from a guess.
@Suite("WebSockets joined mid-stream")
struct MidStreamWebSocketTests {
    static let key: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]

    /// A frame as RFC 6455 lays it out; masked as a client sends it when `masked`.
    static func frame(_ payload: [UInt8], opcode: UInt8 = 0x1, fin: Bool = true, masked: Bool = false, rsv: UInt8 = 0) -> [UInt8] {
        var bytes: [UInt8] = [(fin ? 0x80 : 0) | rsv | opcode]
        let maskBit: UInt8 = masked ? 0x80 : 0
        switch payload.count {
        case ..<126: bytes.append(maskBit | UInt8(payload.count))
        case ...0xFFFF: bytes += [maskBit | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        default: bytes += [maskBit | 127] + (0..<8).reversed().map { UInt8((payload.count >> ($0 * 8)) & 0xFF) }
        }
        guard masked else { return bytes + payload }
        return bytes + key + payload.enumerated().map { $0.element ^ key[$0.offset & 3] }
    }

    static func text(_ text: String, masked: Bool = false) -> [UInt8] { frame(Array(text.utf8), masked: masked) }

    @Test("Whole frames ending with the segment prove a boundary and tell the sender by the mask")
    func proofs() {
        #expect(FrameBoundary.proof(Self.text("42[\"chat\",\"hi\"]")) == .init(masked: false, frames: 1))
        #expect(FrameBoundary.proof(Self.text("3", masked: true) + Self.text("42[1]", masked: true)) == .init(masked: true, frames: 2))
        let long = "4" + String(repeating: "x", count: 70_000)
        #expect(FrameBoundary.proof(Self.text(long)) == .init(masked: false, frames: 1))
        #expect(FrameBoundary.proof(Self.frame([0, 1, 2, 255], opcode: 0x2, masked: true)) == .init(masked: true, frames: 1))
        let fragmented = Self.frame(Array("42[\"a".utf8), fin: false) + Self.frame([], opcode: 0x9) + Self.frame(Array("\"]".utf8), opcode: 0x0)
        #expect(FrameBoundary.proof(fragmented) == .init(masked: false, frames: 3))
        #expect(FrameBoundary.proof(Self.frame([0x03, 0xE8], opcode: 0x8)) == .init(masked: false, frames: 1))
    }

    @Test("What is not a boundary: a frame's middle, a frame cut or run past the segment, lengths not in their shortest form, mixed masks, text that is no Engine.IO packet, HTTP")
    func notProofs() {
        let whole = Self.text("42[\"chat\",\"a message long enough to be cut\"]")
        for cut in 1..<whole.count { #expect(FrameBoundary.proof(Array(whole[cut...])) == nil, "cut at \(cut)") }
        #expect(FrameBoundary.proof(Array(whole.dropLast())) == nil)
        #expect(FrameBoundary.proof(whole + [0x81]) == nil)
        #expect(FrameBoundary.proof([0x81, 126, 0, 5] + Array("4abcd".utf8)) == nil, "5 needs no 16-bit length")
        #expect(FrameBoundary.proof(Self.text("3", masked: true) + Self.text("2")) == nil)
        #expect(FrameBoundary.proof(Self.text("hello")) == nil)
        #expect(FrameBoundary.proof(Self.frame([0x34, 0xFF, 0xFE])) == nil, "not UTF-8")
        #expect(FrameBoundary.proof(Self.frame(Array("\"]".utf8), opcode: 0x0)) == nil, "a continuation with nothing to continue")
        #expect(FrameBoundary.proof(Self.frame(Array("42".utf8), rsv: 0x40)) == nil, "compressed, and nothing agreed to compression")
        #expect(FrameBoundary.proof(Self.frame(Array("42".utf8), rsv: 0x40), compressionAgreed: true) != nil)
        #expect(FrameBoundary.proof(Array("GET /socket.io/?EIO=4 HTTP/1.1\r\n\r\n".utf8)) == nil)
        #expect(FrameBoundary.proof(Array("HTTP/1.1 200 OK\r\n\r\n".utf8)) == nil)
        #expect(FrameBoundary.proof([]) == nil)
    }

    static func messages(_ events: [HTTPConversation.Event]) -> [String] {
        events.compactMap { event in
            guard case .webSocket(.message(.text(let text)), let fromClient, _) = event else { return nil }
            return (fromClient ? "c:" : "s:") + text
        }
    }

    @Test("A capture begun after the upgrade: the rest of a cut frame is dropped, then each side reads from its first proving segment")
    func joinedAfterTheUpgrade() {
        var conversation = HTTPConversation(fromTheStart: false)
        let cutFrame = Self.text("42[\"chat\",\"the end of a message the capture missed\"]")
        var events = conversation.receive(.data(Array(cutFrame[9...]), time: 1), from: .initiator)
        #expect(events.isEmpty && conversation.clientSide == nil)
        events += conversation.receive(.data(Self.text("2"), time: 2), from: .initiator)
        #expect(conversation.clientSide == .responder, "unmasked frames come from the server")
        events += conversation.receive(.data(Self.text("3", masked: true) + Self.text("42[\"a\"]", masked: true), time: 3), from: .responder)
        events += conversation.receive(.data(Self.text("43[\"b\"]"), time: 4), from: .initiator)
        #expect(Self.messages(events) == ["s:2", "c:3", "c:42[\"a\"]", "s:43[\"b\"]"])
        #expect(!events.contains { if case .problem = $0 { true } else { false } })
        let said = events.filter { if case .webSocketWithoutUpgrade = $0 { true } else { false } }
        #expect(said == [.webSocketWithoutUpgrade(time: 2)], "said once, when the first side proved a boundary")
    }

    @Test("A gap in a WebSocket: a problem, nothing decoded until a segment proves a boundary, then the messages again")
    func gapInAWebSocket() {
        var conversation = HTTPConversation()
        var events = conversation.receive(.data(Array("GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nUpgrade: websocket\r\n\r\n".utf8), time: 1), from: .initiator)
        events += conversation.receive(.data(Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n".utf8) + Self.text("0{\"sid\":\"s\"}"), time: 1), from: .responder)
        let big = Self.text("42[\"x\",\"" + String(repeating: "y", count: 3000) + "\"]")
        events += conversation.receive(.data(Array(big[..<1000]), time: 2), from: .responder)
        events += conversation.receive(.gap(1000, time: 3), from: .responder)
        events += conversation.receive(.data(Array(big[2000...]), time: 3), from: .responder)
        events += conversation.receive(.data(Self.text("42[\"after\"]"), time: 4), from: .responder)
        #expect(Self.messages(events) == ["s:0{\"sid\":\"s\"}", "s:42[\"after\"]"])
        #expect(!events.contains { if case .webSocketWithoutUpgrade = $0 { true } else { false } }, "its upgrade was seen")
        let problems = events.compactMap { if case .problem(let code, let message, _, _) = $0 { "\(code): \(message)" } else { nil } }
        #expect(problems.count == 2 && problems.allSatisfy { $0.hasPrefix("pcap.gap") })
    }

    @Test("A connection from its SYN that never upgraded is not taken for a WebSocket")
    func httpStaysHTTP() {
        var conversation = HTTPConversation()
        _ = conversation.receive(.data(Array("GET / HTTP/1.1\r\n\r\n".utf8), time: 1), from: .initiator)
        _ = conversation.receive(.gap(10, time: 2), from: .responder)
        let events = conversation.receive(.data(Self.text("42[1]"), time: 3), from: .responder)
        #expect(Self.messages(events).isEmpty)
    }

    static let flow = SessionAssembler.Flow(client: Endpoint(address: "127.0.0.1", port: 50000)!, server: "127.0.0.1:3000")

    static func assemble(_ messages: [(String, fromClient: Bool)], end: Bool = true) -> [CaptureRecord] {
        var assembler = SessionAssembler()
        var records = assembler.take(.webSocketWithoutUpgrade(time: 1), on: flow).records
        for (index, message) in messages.enumerated() {
            records += assembler.take(.webSocket(.message(.text(message.0)), fromClient: message.fromClient, time: Double(index + 1)), on: flow).records
        }
        if end { records += assembler.take(.ended(fromClient: true, reset: false, time: 99), on: flow).records }
        return records.map(\.record)
    }

    @Test("One conn for the joined WebSocket: its session record says what is unknown, its version shown by who pings (4: the server, 3: the client)")
    func assembledAsOneConn() throws {
        let four = Self.assemble([("42[\"chat\",1]", true), ("2", false), ("3", true), ("42[\"chat\",2]", false)])
        guard case .session(let session) = four.first?.body else { Issue.record("no session first: \(four)"); return }
        #expect(session.eio == .v4 && session.transport == .websocket && session.url.isEmpty && session.sid == nil)
        #expect(session.remote == "127.0.0.1:50000" && session.upstream == "http://127.0.0.1:3000")
        guard case .error(let note) = four[1].body else { Issue.record("no note: \(four)"); return }
        #expect(note.code == .noHandshake && note.message.contains("as its pings show"))
        let events = four.compactMap { if case .packet(let packet) = $0.body { packet.args.map { "\($0)" } } else { nil } }
        #expect(events.count == 2)
        #expect(Set(four.map(\.conn)) == ["c1"])
        #expect(four.first?.ts == RFC3339.format(secondsSince1970: 1), "the session starts with its first message")
        if case .close = four.last?.body {} else { Issue.record("no close: \(four)") }

        let three = Self.assemble([("2", true), ("3", false), ("42[\"chat\"]", true)])
        guard case .session(let session3) = three.first?.body else { Issue.record("no session: \(three)"); return }
        #expect(session3.eio == .v3)

        let quiet = Self.assemble([("42[\"chat\"]", true)])
        guard case .session(let assumed) = quiet.first?.body, case .error(let why) = quiet[1].body else { Issue.record("\(quiet)"); return }
        #expect(assumed.eio == .v4 && why.message.contains("assumed"))
    }
}
