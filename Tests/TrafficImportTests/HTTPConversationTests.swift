import PeerSupport
import SocketIOProtocol
import Testing
import TrafficCapture

@testable import TrafficImport

/// HTTP/1.1 and WebSocket read off a TCP connection's two streams.
@Suite("HTTP conversations")
struct HTTPConversationTests {
    func feed(_ conversation: inout HTTPConversation, _ side: TCPReassembler.Side, _ text: String) -> [HTTPConversation.Event] {
        conversation.receive(.data(Array(text.utf8), time: 1), from: side)
    }

    func feed(_ conversation: inout HTTPConversation, _ side: TCPReassembler.Side, bytes: [UInt8]) -> [HTTPConversation.Event] {
        conversation.receive(.data(bytes, time: 1), from: side)
    }

    @Test("Kept-alive and pipelined requests, Content-Length and chunked bodies cut anywhere, paired in order")
    func keepAliveAndChunked() {
        var conversation = HTTPConversation()
        var events = feed(&conversation, .initiator, "POST /socket.io/?EIO=4&transport=polling&sid=a HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n4hel")
        events += feed(&conversation, .initiator, "lo" + "GET /socket.io/?EIO=4&transport=polling&sid=a HTTP/1.1\r\nHost: x\r\n\r\n")
        events += feed(&conversation, .responder, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n4wo\r\n")
        events += feed(&conversation, .responder, "3;ext=1\r\nrld\r\n0\r\n\r\n")
        var seen: [String] = []
        for event in events {
            switch event {
            case .request(let head, let body, _): seen.append("\(head.method) \(String(decoding: body, as: UTF8.self))")
            case .response(let head, let body, let request, _): seen.append("\(head.status) \(String(decoding: body, as: UTF8.self)) for \(request?.method ?? "?")")
            default: seen.append("\(event)")
            }
        }
        #expect(seen == ["POST 4hello", "GET ", "200 ok for POST", "200 4world for GET"])
        #expect(conversation.clientSide == .initiator)
    }

    @Test("A 101 turns both sides into WebSockets, frames sent right behind the handshake included")
    func upgrade() {
        var conversation = HTTPConversation()
        let mask: [UInt8] = [1, 2, 3, 4]
        let probe = Array("2probe".utf8).enumerated().map { $0.element ^ mask[$0.offset % 4] }
        var request = Array("GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n".utf8)
        request += [0x81, 0x80 | UInt8(probe.count)] + mask + probe
        var events = feed(&conversation, .initiator, bytes: request)
        events += feed(&conversation, .responder, bytes: Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n".utf8) + [0x81, 0x06] + Array("3probe".utf8))
        let messages = events.compactMap { event -> String? in
            guard case .webSocket(.message(let message), let fromClient, _) = event, case .text(let text) = message else { return nil }
            return (fromClient ? "c:" : "s:") + text
        }
        #expect(messages == ["c:2probe", "s:3probe"])
    }

    @Test("Started mid-connection: the server's bytes come first, the client is told by its request line; a gap loses a side until a message starts")
    func midConnectionAndGap() {
        var conversation = HTTPConversation(fromTheStart: false)
        var events = feed(&conversation, .initiator, "t of an earlier body")
        #expect(conversation.clientSide == nil)
        events += feed(&conversation, .responder, "GET /a HTTP/1.1\r\n\r\n")
        #expect(conversation.clientSide == .responder)
        events += feed(&conversation, .initiator, "\r\nHTTP/1.1 204 No Content\r\n\r\n")
        events += conversation.receive(.gap(10, time: 2), from: .responder)
        events += feed(&conversation, .responder, "rest of a lost request\r\nGET /b HTTP/1.1\r\n\r\n")
        let requests = events.compactMap { if case .request(let head, _, _) = $0 { head.target } else { nil } }
        #expect(requests == ["/a", "/b"])
        let problems = events.compactMap { if case .problem(let code, _, _, _) = $0 { code } else { nil } }
        #expect(problems == ["pcap.gap"], "the bytes before the first message are not a problem; the gap is")
        let responses = events.compactMap { if case .response(let head, _, let request, _) = $0 { "\(head.status) \(request?.target ?? "")" } else { nil } }
        #expect(responses == ["204 /a"])
        #expect(events.contains { if case .problem(code: "pcap.gap", _, fromClient: true, _) = $0 { true } else { false } })
    }

    @Test("A head with a line that is no header: one problem, and the next request is still read (a fuzzer's find: this looped forever)")
    func brokenHeaderLine() {
        var conversation = HTTPConversation()
        let events = feed(&conversation, .initiator, "GET /a HTTP/1.1\r\nUpgrade: websocket\r\nCo&no colon HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n")
        let requests = events.compactMap { if case .request(let head, _, _) = $0 { head.target } else { nil } }
        #expect(requests == ["/b"])
        #expect(events.filter { if case .problem = $0 { true } else { false } }.count == 1)
    }

    @Test("Negative lengths (a fuzzer's find: they crashed) are problems, not bodies")
    func negativeLengths() {
        var conversation = HTTPConversation()
        var events = feed(&conversation, .initiator, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n")
        events += feed(&conversation, .responder, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n-5d\r\n")
        events += feed(&conversation, .responder, "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nabc")
        #expect(events.filter { if case .problem(code: "pcap.http", _, _, _) = $0 { true } else { false } }.count == 2)
        #expect(!events.contains { if case .response = $0 { true } else { false } })
    }

    @Test("Not HTTP at all: one problem, and nothing made up")
    func notHTTP() {
        var conversation = HTTPConversation()
        let events = feed(&conversation, .initiator, "SSH-2.0-OpenSSH_9.2\r\n\r\n")
        #expect(!events.contains { if case .request = $0 { true } else { false } })
    }

    /// Server messages (unmasked), compressed: RSV1 set on the first frame.
    static func compressedFrame(_ payload: [UInt8]) -> [UInt8] { [0xC1, UInt8(payload.count)] + payload }

    // Made with Python's zlib (wbits -15, a sync flush, its 00 00 ff ff taken off, as RFC 7692 says):
    // two messages through one compressor (the second refers back to the first), and the second alone.
    static let first = hexBytes("32318a56ca4d2d2e4e4c4f55d251ca48cdc9c957402295620100")
    static let secondWithContext = hexBytes("32c1af4021313d31334f291600")
    static let secondAlone = hexBytes("32318a56ca4d2d2e4e4c4f55d251ca48cdc9c957402613d31333f394620100")

    func serverMessages(extensions: String, frames: [[UInt8]]) -> [String] {
        var conversation = HTTPConversation()
        var events = feed(&conversation, .initiator, "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        events += feed(&conversation, .responder, bytes: Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Extensions: \(extensions)\r\n\r\n".utf8) + frames.flatMap { $0 })
        return events.compactMap { event in
            switch event {
            case .webSocket(.message(.text(let text)), _, _): text
            case .problem(let code, _, _, _): code.rawValue
            default: nil
            }
        }
    }

    @Test("permessage-deflate: messages inflated, the window kept across messages unless the handshake said no context takeover")
    func perMessageDeflate() {
        let expected = [#"42["message","hello hello hello"]"#, #"42["message","hello hello hello again"]"#]
        #expect(serverMessages(extensions: "permessage-deflate; client_max_window_bits=15", frames: [Self.compressedFrame(Self.first), Self.compressedFrame(Self.secondWithContext)]) == expected)
        #expect(serverMessages(extensions: "permessage-deflate; server_no_context_takeover", frames: [Self.compressedFrame(Self.first), Self.compressedFrame(Self.secondAlone)]) == expected)
        // Without the agreement, a compressed message is a problem, not text made of deflate bytes.
        #expect(serverMessages(extensions: "x-other", frames: [Self.compressedFrame(Self.first)]) == ["pcap.inflate"])
    }

    @Test("A gzip body (Python's gzip) is read inflated; one that does not inflate is a problem, its bytes kept")
    func gzipBody() {
        var conversation = HTTPConversation()
        var events = feed(&conversation, .initiator, "GET /socket.io/?EIO=4&transport=polling&sid=a HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n")
        let body = hexBytes("1f8b080000000000020333a920120000c5cad4ba29000000")
        events += feed(&conversation, .responder, bytes: Array("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body)
        events += feed(&conversation, .initiator, "GET /x HTTP/1.1\r\n\r\n")
        events += feed(&conversation, .responder, "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc")
        let bodies = events.compactMap { if case .response(_, let body, _, _) = $0 { String(decoding: body, as: UTF8.self) } else { nil } }
        #expect(bodies == ["4" + String(repeating: "x", count: 40), "abc"])
        #expect(events.contains { if case .problem(code: "pcap.inflate", _, _, _) = $0 { true } else { false } })
    }
}
