import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOWebSocket
import Testing

@testable import HTTPClientTransport
@testable import SocketIOTransport
@testable import TransportCore
@testable import TransportTLS
@testable import WebSocketTransport

/// A server connection kept alive across requests, then switched to a WebSocket by a later one:
/// what NIO's typed upgrader does not do (swift-nio#680).
@Suite("Connection phases: keep-alive, then an upgrade on any request")
struct ConnectionPhaseTests {
    static let key = "dGhlIHNhbXBsZSBub25jZQ=="

    func makeConnection() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try ConnectionPhase.configureHTTP(channel.pipeline.syncOperations)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    func parts(_ channel: EmbeddedChannel) throws -> [ConnectionPhase.Inbound] {
        var parts: [ConnectionPhase.Inbound] = []
        while let part = try channel.readInbound(as: ConnectionPhase.Inbound.self) { parts.append(part) }
        return parts
    }

    func written(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) { text += buffer.readString(length: buffer.readableBytes) ?? "" }
        return text
    }

    func respond(_ channel: EmbeddedChannel, body: String) throws {
        let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": String(body.utf8.count)])
        try channel.writeOutbound(ConnectionPhase.Outbound.http(.head(head)))
        try channel.writeOutbound(ConnectionPhase.Outbound.http(.body(.byteBuffer(ByteBuffer(string: body)))))
        try channel.writeOutbound(ConnectionPhase.Outbound.http(.end(nil)))
    }

    static let upgradeRequest = "GET /socket.io/?EIO=4&transport=websocket&sid=s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        + "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: \(key)\r\n\r\n"

    @Test("The accept value of RFC 6455 §1.3's example, and what makes a handshake")
    func acceptValue() {
        #expect(WebSocketUpgrade.acceptValue(forKey: Self.key) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: [
            "Upgrade": "WebSocket", "Connection": "keep-alive, Upgrade", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": Self.key,
        ])
        #expect(WebSocketUpgrade.accept(head) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        head.headers.replaceOrAdd(name: "Sec-WebSocket-Version", value: "8")
        #expect(WebSocketUpgrade.accept(head) == nil)
        #expect(WebSocketUpgrade.isUpgradeRequest(head), "still a request to switch: the connection cannot go on as HTTP")
        head.headers.replaceOrAdd(name: "Sec-WebSocket-Version", value: "13")
        head.headers.add(name: "Sec-WebSocket-Key", value: Self.key)
        #expect(WebSocketUpgrade.accept(head) == nil, "two keys")
        head.method = .POST
        #expect(WebSocketUpgrade.accept(head) == nil)
        let plain = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: ["Connection": "keep-alive"])
        #expect(!WebSocketUpgrade.isUpgradeRequest(plain))
    }

    @Test("Two polling requests on one connection, then an upgrade: the 101 goes out, and the frame sent right behind it arrives as a frame")
    func upgradeAfterKeptAliveRequests() throws {
        let channel = try makeConnection()
        for body in ["first", "second"] {
            try channel.writeInbound(ByteBuffer(string: "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n"))
            let inbound = try parts(channel)
            guard case .http(.head(let head)) = inbound.first else { Issue.record("no head: \(inbound)"); return }
            #expect(head.uri.hasPrefix("/socket.io/"))
            try respond(channel, body: body)
            let response = try written(channel)
            #expect(response.hasPrefix("HTTP/1.1 200 OK"))
            #expect(response.hasSuffix(body))
            #expect(!response.lowercased().contains("connection: close"))
        }
        // The client's first frame (masked "2probe") in the same segment as its upgrade request.
        let mask: [UInt8] = [1, 2, 3, 4]
        let probe = Array("2probe".utf8).enumerated().map { $0.element ^ mask[$0.offset % 4] }
        var bytes = ByteBuffer(string: Self.upgradeRequest)
        bytes.writeBytes([0x81, 0x80 | UInt8(probe.count)] + mask + probe)
        try channel.writeInbound(bytes)
        let upgrade = try parts(channel)
        guard case .http(.head(let head)) = upgrade.first else { Issue.record("no upgrade head: \(upgrade)"); return }
        let accept = try #require(WebSocketUpgrade.accept(head))
        try ConnectionPhase.switchToWebSocket(
            channel.pipeline.syncOperations,
            responseHeaders: WebSocketUpgrade.responseHeaders(accept: accept, extra: [:]),
            maxFrameSize: 1 << 16
        )
        // NIO takes a decoder out on the next tick, and hands on what it held then.
        channel.embeddedEventLoop.run()
        let switching = try written(channel)
        #expect(switching.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"))
        #expect(switching.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"))
        #expect(throws: (any Error).self, "HTTP is off the pipeline") {
            try channel.pipeline.syncOperations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
        }
        let frames = try parts(channel)
        guard case .frame(let frame) = frames.first else { Issue.record("the frame behind the upgrade was lost: \(frames)"); return }
        #expect(String(buffer: frame.unmaskedData) == "2probe")
        // Frames out are written as frames, unmasked (server side).
        try channel.writeOutbound(ConnectionPhase.Outbound.frame(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: "3probe"))))
        var out: [UInt8] = []
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) { out += buffer.readBytes(length: buffer.readableBytes) ?? [] }
        #expect(out == [0x81, 0x06] + Array("3probe".utf8))
    }
}
