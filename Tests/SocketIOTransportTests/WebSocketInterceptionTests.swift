import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOWebSocket
import SocketIOProtocol
import Testing

@testable import HTTPClientTransport
@testable import SocketIOTransport
@testable import TransportCore
@testable import TransportTLS
@testable import WebSocketTransport

/// The relay going message by message (the proxy with `--fault`), on embedded channels sharing
/// one loop whose clock the tests move: what is passed goes byte for byte, what is decided
/// otherwise is dropped, replaced, held, delayed in order, answered, or cut.
@Suite("WebSocket relay, message by message")
struct WebSocketInterceptionTests {
    typealias Decide = @Sendable (Peer, WebSocketMessage) -> InterceptionDecision<WebSocketMessage>

    struct Relay {
        let loop: EmbeddedEventLoop
        let client: EmbeddedChannel
        let upstream: EmbeddedChannel
        let ended: NIOLockedValueBox<[Peer]>
        let control: NIOLockedValueBox<WebSocketRelay.Control?>
    }

    func makeRelay(_ decide: @escaping Decide) throws -> Relay {
        let loop = EmbeddedEventLoop()
        let client = EmbeddedChannel(loop: loop)
        let upstream = EmbeddedChannel(loop: loop)
        for channel in [client, upstream] {
            try channel.pipeline.syncOperations.addHandler(WebSocketFrameEncoder())
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        }
        let ended = NIOLockedValueBox<[Peer]>([])
        let control = NIOLockedValueBox<WebSocketRelay.Control?>(nil)
        let observer = WebSocketRelay.Observer(
            message: { _, _ in Issue.record("an intercepted relay observes through its decisions") },
            oversized: { _, _ in }, malformed: { _, _ in },
            ended: { side in ended.withLockedValue { $0.append(side) } },
            interception: WebSocketRelay.Interception(
                decide: { side, message, _ in decide(side, message) },
                started: { started in control.withLockedValue { $0 = started } }
            )
        )
        let handler = WebSocketRelayHandler.upstream(observer: observer, maxMessageSize: 1 << 20)
        try WebSocketRelayHandler.install(handler, in: upstream)
        try handler.attachClient(to: client)
        return Relay(loop: loop, client: client, upstream: upstream, ended: ended, control: control)
    }



    /// The messages in unmasked or masked frames.
    func messages(_ bytes: [UInt8]) -> [String] {
        var splitter = WebSocketFrameSplitter(maxFrameSize: 1 << 20)
        return bytes.withUnsafeBytes { splitter.read($0) }.map { String(decoding: $0.payload, as: UTF8.self) }
    }

    static func text(_ message: WebSocketMessage) -> String {
        switch message {
        case .text(let text): text
        case .binary(let bytes): "binary \(bytes)"
        }
    }

    @Test("What is passed goes byte for byte: fragments, a ping between them, the mask")
    func passes() throws {
        let relay = try makeRelay { _, _ in InterceptionDecision<WebSocketMessage>() }
        let bytes = frameBytes(1, Array("42[\"a".utf8), fin: false, mask: [1, 2, 3, 4]) + frameBytes(9, [7], mask: [5, 6, 7, 8])
            + frameBytes(0, Array("\"]".utf8), mask: [9, 9, 9, 9])
        try relay.client.writeInbound(ByteBuffer(bytes: bytes[..<5]))
        try relay.client.writeInbound(ByteBuffer(bytes: bytes[5...]))
        #expect(try writtenBytes(relay.upstream) == bytes)
    }

    @Test("Dropped, replaced (masked toward the server), answered back to the sender")
    func decides() throws {
        let relay = try makeRelay { side, message in
            switch Self.text(message) {
            case "drop": InterceptionDecision<WebSocketMessage>(.drop)
            case "swap": InterceptionDecision<WebSocketMessage>(.replace([.text("swapped"), .binary([1, 2])]))
            case "refuse": InterceptionDecision<WebSocketMessage>(.drop, reply: [.text("44{\"message\":\"no\"}")])
            default: InterceptionDecision<WebSocketMessage>()
            }
        }
        for text in ["drop", "keep", "swap", "refuse"] {
            try relay.client.writeInbound(ByteBuffer(bytes: frameBytes(1, Array(text.utf8), mask: [1, 2, 3, 4])))
        }
        let toServer = try writtenBytes(relay.upstream)
        #expect(messages(toServer) == ["keep", "swapped", "\u{1}\u{2}"])
        // The replacement's frames are masked (the proxy is the server's client); the kept one is as it came.
        #expect(toServer[1] & 0x80 != 0)
        #expect(Array(toServer[..<10]) == frameBytes(1, Array("keep".utf8), mask: [1, 2, 3, 4]))
        let toClient = try writtenBytes(relay.client)
        #expect(toClient == frameBytes(1, Array("44{\"message\":\"no\"}".utf8)), "unmasked, to the client that sent the CONNECT")
    }

    @Test("A binary packet's messages are held until the last one decides for all")
    func holds() throws {
        let relay = try makeRelay { _, message in
            Self.text(message).hasPrefix("45") ? InterceptionDecision<WebSocketMessage>(.hold) : InterceptionDecision<WebSocketMessage>(.pass)
        }
        let header = frameBytes(1, Array("451-[\"up\",{\"_placeholder\":true,\"num\":0}]".utf8))
        let attachment = frameBytes(2, [0xFF])
        try relay.upstream.writeInbound(ByteBuffer(bytes: header))
        #expect(try writtenBytes(relay.client).isEmpty)
        try relay.upstream.writeInbound(ByteBuffer(bytes: attachment))
        #expect(try writtenBytes(relay.client) == header + attachment)
    }

    @Test("A delay holds its message and what follows it in that direction, not the other")
    func delays() throws {
        let relay = try makeRelay { side, message in
            Self.text(message) == "slow" ? InterceptionDecision<WebSocketMessage>(delay: 1) : InterceptionDecision<WebSocketMessage>()
        }
        try relay.upstream.writeInbound(ByteBuffer(bytes: frameBytes(1, Array("slow".utf8))))
        try relay.upstream.writeInbound(ByteBuffer(bytes: frameBytes(1, Array("next".utf8))))
        try relay.upstream.writeInbound(ByteBuffer(bytes: frameBytes(9, [])))
        try relay.client.writeInbound(ByteBuffer(bytes: frameBytes(1, Array("up".utf8), mask: [1, 1, 1, 1])))
        #expect(try writtenBytes(relay.client).isEmpty)
        #expect(messages(try writtenBytes(relay.upstream)) == ["up"])
        relay.loop.advanceTime(by: .milliseconds(999))
        #expect(try writtenBytes(relay.client).isEmpty)
        relay.loop.advanceTime(by: .milliseconds(1))
        #expect(messages(try writtenBytes(relay.client)) == ["slow", "next", ""])
    }

    @Test("A cut sends each side a close frame, closes both, and the relay ends by the proxy")
    func cuts() throws {
        let relay = try makeRelay { _, message in
            Self.text(message) == "bye" ? InterceptionDecision<WebSocketMessage>(cut: .close) : InterceptionDecision<WebSocketMessage>()
        }
        try relay.client.writeInbound(ByteBuffer(bytes: frameBytes(1, Array("bye".utf8), mask: [1, 2, 3, 4])))
        relay.loop.run()
        let toServer = try writtenBytes(relay.upstream)
        #expect(Array(toServer[..<9]) == frameBytes(1, Array("bye".utf8), mask: [1, 2, 3, 4]), "the packet goes first")
        var splitter = WebSocketFrameSplitter(maxFrameSize: 100)
        let frames = toServer.withUnsafeBytes { splitter.read($0) }
        #expect(frames.last?.isClose == true && frames.last?.payload == [0x03, 0xE9] && frames.last!.raw[1] & 0x80 != 0)
        #expect(try writtenBytes(relay.client) == frameBytes(8, [0x03, 0xE9]))
        #expect(!relay.client.isActive && !relay.upstream.isActive)
        #expect(relay.ended.withLockedValue { $0 } == [.proxy])
    }

    @Test("A cut from elsewhere (a timed disconnect) through the control the relay hands out")
    func cutFromElsewhere() throws {
        let relay = try makeRelay { _, _ in InterceptionDecision<WebSocketMessage>() }
        let control = try #require(relay.control.withLockedValue { $0 })
        control.cut(.close)
        relay.loop.run()
        #expect(!relay.client.isActive && !relay.upstream.isActive)
        #expect(relay.ended.withLockedValue { $0 } == [.proxy])
    }

    @Test("Bytes that break the framing: what was held and the rest go on as they came")
    func malformed() throws {
        let relay = try makeRelay { _, _ in InterceptionDecision<WebSocketMessage>(.hold) }
        let held = frameBytes(1, Array("451-".utf8))
        let broken: [UInt8] = [0x83, 0x00, 0x41, 0x42]  // opcode 3 is reserved
        try relay.upstream.writeInbound(ByteBuffer(bytes: held))
        try relay.upstream.writeInbound(ByteBuffer(bytes: broken))
        try relay.upstream.writeInbound(ByteBuffer(bytes: [0x43]))
        #expect(try writtenBytes(relay.client) == held + broken + [0x43])
    }
}

@Suite("WebSocket frame splitter")
struct WebSocketFrameSplitterTests {
    @Test("Frames cut anywhere come out whole, with their raw bytes and unmasked payload")
    func splits() {
        let frames = frameBytes(1, Array("hello".utf8), mask: [1, 2, 3, 4]) + frameBytes(2, [0, 255])
        for cut in 0...frames.count {
            var splitter = WebSocketFrameSplitter(maxFrameSize: 100)
            var out = frames[..<cut].withUnsafeBytes { splitter.read($0) }
            out += frames[cut...].withUnsafeBytes { splitter.read($0) }
            #expect(out.map(\.payload) == [Array("hello".utf8), [0, 255]])
            #expect(out.flatMap(\.raw) == frames)
        }
    }

    @Test("Long lengths, and what is too large or broken")
    func limits() {
        let big = WebSocketFrameSplitter.encode(opcode: 2, payload: [UInt8](repeating: 7, count: 70_000), masked: true)
        var splitter = WebSocketFrameSplitter(maxFrameSize: 100_000)
        #expect(big.withUnsafeBytes { splitter.read($0) }.first?.payload.count == 70_000)
        var small = WebSocketFrameSplitter(maxFrameSize: 1000)
        #expect(big.withUnsafeBytes { small.read($0) }.isEmpty)
        #expect(small.failure == .oversized(70_000))
        #expect(small.takeRemainder() == big)
        // The frame rules are the stream reader's (one header reader): the same bytes, the same reason.
        let broken: [([UInt8], String)] = [
            ([0x83, 0x00], "reserved opcode 3"),
            ([0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4], "frame length with its top bit set"),
            ([0x09, 0x00], "fragmented control frame"),
            ([0x88, 0x7E, 0x00, 0x7E] + [UInt8](repeating: 0, count: 126), "control frame of 126 bytes"),
        ]
        for (bytes, reason) in broken {
            var splitter = WebSocketFrameSplitter(maxFrameSize: 1000)
            #expect(bytes.withUnsafeBytes { splitter.read($0) }.isEmpty)
            #expect(splitter.failure == .malformed(reason))
            var reader = WebSocketStreamReader(maxMessageSize: 1000)
            var events: [WebSocketStreamReader.Event] = []
            reader.read(bytes, into: &events)
            #expect(events == [.malformed(reason)])
        }
    }
}
