import NIOCore
import NIOEmbedded
import Testing

@testable import HTTPClientTransport
@testable import SocketIOTransport
@testable import TransportCore
@testable import TransportTLS
@testable import WebSocketTransport

/// When a server's connection is closed for not keeping up its side of HTTP, on a moved clock.
@Suite("Connection deadlines")
struct ConnectionDeadlinesTests {
    static let limits = ConnectionDeadlines.Limits(keepAlive: .seconds(5), head: .seconds(10), body: .seconds(10))

    func connection() throws -> (EmbeddedChannel, ConnectionDeadlines) {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, ConnectionDeadlines(channel, limits: Self.limits))
    }

    @Test("A connection that sends no whole head is closed at the head limit, however it trickles")
    func silentOrSlowHead() throws {
        let (channel, _) = try connection()
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(9_999))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!channel.isActive)
    }

    @Test("A body that stalls is closed a body limit after its last byte; one that keeps coming is not")
    func stalledBody() throws {
        let (channel, deadlines) = try connection()
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        deadlines.requestBegan()
        for _ in 0..<5 {
            channel.embeddedEventLoop.advanceTime(by: .seconds(8))
            deadlines.bodyProgressed()
        }
        #expect(channel.isActive, "49 s in, a byte every 8 s")
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        #expect(!channel.isActive)
    }

    @Test("A request being answered (a long-poll) or a connection that left HTTP is never timed; after an answer, keep-alive's limit")
    func answeringAndKeepAlive() throws {
        let (channel, deadlines) = try connection()
        deadlines.requestBegan()
        deadlines.requestReceived()
        channel.embeddedEventLoop.advanceTime(by: .seconds(600))
        #expect(channel.isActive)
        deadlines.requestEnded()
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(4_999))
        #expect(channel.isActive)
        deadlines.requestBegan()  // the next head came in time
        deadlines.requestReceived()
        channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        #expect(channel.isActive)
        deadlines.requestEnded()
        channel.embeddedEventLoop.advanceTime(by: .seconds(5))
        #expect(!channel.isActive)
    }

    @Test("A stopped connection's timer goes with it")
    func stopped() throws {
        let (channel, deadlines) = try connection()
        deadlines.stop()
        channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        #expect(channel.isActive)
    }
}
