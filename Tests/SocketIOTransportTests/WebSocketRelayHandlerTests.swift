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

/// The relay's two handlers on two embedded channels sharing one loop, as the proxy runs them on
/// one event loop: bytes forwarded as they came, reads held while the other side cannot take more,
/// observing after forwarding, and each side's end closing the other.
@Suite("WebSocket relay handlers")
struct WebSocketRelayHandlerTests {
    /// What the observer was told, in order.
    final class Seen: Sendable {
        let events = NIOLockedValueBox<[String]>([])
        func add(_ event: String) { events.withLockedValue { $0.append(event) } }
        var all: [String] { events.withLockedValue { $0 } }
    }

    struct Relay {
        let loop: EmbeddedEventLoop
        let client: EmbeddedChannel
        let upstream: EmbeddedChannel
        let upstreamHandler: WebSocketRelayHandler
        let seen: Seen
    }

    /// Two active channels with NIO's frame encoder in place (the relay goes in front of it, as
    /// after a real upgrade); the upstream side installed, the client side not yet attached.
    func makeRelay(maxMessageSize: Int = 1 << 20, admit: ReadGate? = nil, counting reads: ReadCounter? = nil) throws -> Relay {
        let loop = EmbeddedEventLoop()
        let client = EmbeddedChannel(loop: loop)
        let upstream = EmbeddedChannel(loop: loop)
        if let reads { try client.pipeline.syncOperations.addHandler(reads) }
        for channel in [client, upstream] {
            try channel.pipeline.syncOperations.addHandler(WebSocketFrameEncoder())
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        }
        let seen = Seen()
        let observer = WebSocketRelay.Observer(
            message: { side, message in
                switch message {
                case .text(let text): seen.add("\(side) text \(text)")
                case .binary(let bytes): seen.add("\(side) binary \(bytes)")
                }
            },
            oversized: { side, size in seen.add("\(side) oversized \(size)") },
            malformed: { side, reason in seen.add("\(side) malformed \(reason)") },
            ended: { side in seen.add("ended by \(side)") },
            admit: admit
        )
        let handler = WebSocketRelayHandler.upstream(observer: observer, maxMessageSize: maxMessageSize)
        try WebSocketRelayHandler.install(handler, in: upstream)
        return Relay(loop: loop, client: client, upstream: upstream, upstreamHandler: handler, seen: seen)
    }



    @Test("Bytes go through unchanged both ways; what came before the client was attached comes first; messages are observed")
    func forwardsBytes() throws {
        let relay = try makeRelay()
        let open = frameBytes(1, Array(#"0{"sid":"s","upgrades":[],"pingInterval":25000,"pingTimeout":20000}"#.utf8))
        try relay.upstream.writeInbound(ByteBuffer(bytes: open))
        #expect(relay.seen.all.isEmpty, "observed before its conn exists")
        try relay.upstreamHandler.attachClient(to: relay.client)
        #expect(try writtenBytes(relay.client) == open)
        #expect(relay.seen.all == [#"server text 0{"sid":"s","upgrades":[],"pingInterval":25000,"pingTimeout":20000}"#])

        // A masked event in two TCP segments, cut inside the header.
        let event = frameBytes(1, Array(#"42["hi",1.50]"#.utf8), mask: [9, 8, 7, 6])
        try relay.client.writeInbound(ByteBuffer(bytes: event[..<3]))
        try relay.client.writeInbound(ByteBuffer(bytes: event[3...]))
        relay.client.pipeline.fireChannelReadComplete()
        #expect(try writtenBytes(relay.upstream) == event)
        #expect(relay.seen.all.last == #"client text 42["hi",1.50]"#)
    }

    @Test("The client's close frame and then its TCP end: the upstream is closed, the relay ended by the client")
    func clientCloses() throws {
        let relay = try makeRelay()
        try relay.upstreamHandler.attachClient(to: relay.client)
        let close = frameBytes(8, [0x03, 0xE8], mask: [1, 2, 3, 4])
        try relay.client.writeInbound(ByteBuffer(bytes: close))
        relay.client.pipeline.fireChannelReadComplete()
        #expect(try writtenBytes(relay.upstream) == close)
        try relay.client.close().wait()
        relay.loop.run()
        #expect(!relay.upstream.isActive)
        #expect(relay.seen.all == ["ended by client"])
    }

    @Test("An upstream that ends before its client is attached reports the end once attached, and closes the client")
    func upstreamEndsFirst() throws {
        let relay = try makeRelay()
        try relay.upstream.close().wait()
        relay.loop.run()
        #expect(relay.seen.all.isEmpty)
        try relay.upstreamHandler.attachClient(to: relay.client)
        relay.loop.run()
        #expect(relay.seen.all == ["ended by server"])
        #expect(!relay.client.isActive)
    }

    @Test("A client gone while its upgrade completed: attaching closes the upstream, the end is the client's")
    func clientGoneBeforeAttach() throws {
        let relay = try makeRelay()
        try relay.client.close().wait()
        relay.loop.run()
        // NIO refuses handlers on a closed pipeline: the server then abandons the upstream.
        #expect(throws: (any Error).self) { try relay.upstreamHandler.attachClient(to: relay.client) }
        relay.upstreamHandler.abandon()
        relay.loop.run()
        #expect(!relay.upstream.isActive)
    }

    @Test("abandon() closes an upstream that never got a client, and leaves an attached one alone")
    func abandon() throws {
        let lonely = try makeRelay()
        lonely.upstreamHandler.abandon()
        lonely.loop.run()
        #expect(!lonely.upstream.isActive)

        let attached = try makeRelay()
        try attached.upstreamHandler.attachClient(to: attached.client)
        attached.upstreamHandler.abandon()
        attached.loop.run()
        #expect(attached.upstream.isActive && attached.client.isActive)
    }

    /// Counts the reads that reach the socket, on the head side of the relay.
    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        var count = 0
        func read(context: ChannelHandlerContext) {
            count += 1
            context.read()
        }
    }

    @Test("While the observer is behind, the relay stops reading; its resume starts reading again")
    func readGate() throws {
        let behind = NIOLockedValueBox(true)
        let resumes = NIOLockedValueBox<[@Sendable () -> Void]>([])
        let reads = ReadCounter()
        let relay = try makeRelay(admit: { resume in
            behind.withLockedValue { isBehind in
                if isBehind { resumes.withLockedValue { $0.append(resume) } }
                return !isBehind
            }
        }, counting: reads)
        try relay.upstreamHandler.attachClient(to: relay.client)
        let before = reads.count
        relay.client.read()
        #expect(reads.count == before, "read although the capture is behind")
        #expect(resumes.withLockedValue { $0.count } == 1)
        behind.withLockedValue { $0 = false }
        for resume in resumes.withLockedValue({ $0 }) { resume() }
        relay.loop.run()
        #expect(reads.count == before + 1, "the held read was not resumed")
        relay.client.read()
        #expect(reads.count == before + 2)
    }

    @Test("A message over the limit is relayed whole and reported, not observed")
    func oversized() throws {
        let relay = try makeRelay(maxMessageSize: 10)
        try relay.upstreamHandler.attachClient(to: relay.client)
        let big = frameBytes(2, Array(repeating: 0xAB, count: 100))
        try relay.upstream.writeInbound(ByteBuffer(bytes: big))
        relay.upstream.pipeline.fireChannelReadComplete()
        #expect(try writtenBytes(relay.client) == big)
        #expect(relay.seen.all == ["server oversized 100"])
    }
}
