import SocketIOProtocol
import Testing
import TrafficCapture

@testable import TrafficReplay

/// Which recorded server packets a replayed client packet does not wait for: broadcasts recorded
/// just before the emit that caused them (captures of siotap before #32), and nothing else.
@Suite("Cross-conn order in replay")
struct CrossConnOrderTests {
    func packet(_ seq: Int, _ conn: String, _ text: String, _ dir: Direction, at time: Double?) throws -> CrossConnOrder.Packet {
        var decoder = SocketIODecoder(version: .v5)
        let decoded = try #require(try decoder.decode(text: text))
        return CrossConnOrder.Packet(seq: seq, conn: conn, time: time, record: PacketRecord(decoded, raw: text, dir: dir, transport: .websocket))
    }

    @Test("A broadcast recorded just before its emit, on another conn, carrying the emit's text, is not waited for")
    func inversionExcused() throws {
        let order = CrossConnOrder([
            try packet(10, "c2", #"2["message",{"message":"hi","sender":"alice"}]"#, .serverToClient, at: 100.000),
            try packet(11, "c1", #"20["message",{"message":"hi","sender":"alice"}]"#, .clientToServer, at: 100.002),
        ])
        #expect(order.exemptions[11] == .init(excused: [10], sentBefore: 10))
    }

    @Test("Everything else is waited for: older, unrelated, on the same conn, answers, or without times")
    func othersWaitedFor() throws {
        let emit = #"2["message",{"message":"hi"}]"#
        let cases: [[CrossConnOrder.Packet]] = [
            // Recorded 30 ms before: not an inversion a relay could make.
            [try packet(1, "c2", #"2["message",{"message":"hi"}]"#, .serverToClient, at: 100.000), try packet(2, "c1", emit, .clientToServer, at: 100.030)],
            // Nothing in common: bob joining the room alice then writes to must come first.
            [try packet(1, "c2", #"2["roomJoined","vip"]"#, .serverToClient, at: 100.000), try packet(2, "c1", emit, .clientToServer, at: 100.001)],
            // The conn's own packet.
            [try packet(1, "c1", #"2["message",{"message":"hi"}]"#, .serverToClient, at: 100.000), try packet(2, "c1", emit, .clientToServer, at: 100.001)],
            // An ack is an answer to the conn's own packet, never a broadcast.
            [try packet(1, "c2", #"31["hi"]"#, .serverToClient, at: 100.000), try packet(2, "c1", emit, .clientToServer, at: 100.001)],
            // No times (an imported capture without them): the capture's order, as ever.
            [try packet(1, "c2", #"2["message",{"message":"hi"}]"#, .serverToClient, at: nil), try packet(2, "c1", emit, .clientToServer, at: nil)],
            // The event name alone is not shared content.
            [try packet(1, "c2", #"2["message",{"message":"other"}]"#, .serverToClient, at: 100.000), try packet(2, "c1", emit, .clientToServer, at: 100.001)],
        ]
        for packets in cases {
            #expect(CrossConnOrder(packets).exemptions.isEmpty, "\(packets.map(\.record.raw))")
        }
    }

    @Test("Several conns' deliveries of one emit are all excused, and the emit waits for the client packets before the first")
    func tenClients() throws {
        var packets: [CrossConnOrder.Packet] = []
        for index in 2...10 {
            packets.append(try packet(index, "c\(index)", #"2["message",{"message":"m-1-7"}]"#, .serverToClient, at: 100.0 + Double(index) / 10_000))
        }
        packets.append(try packet(20, "c1", #"21["message",{"message":"m-1-7"}]"#, .clientToServer, at: 100.004))
        let exemption = try #require(CrossConnOrder(packets).exemptions[20])
        #expect(exemption.excused == Set(2...10))
        #expect(exemption.sentBefore == 2)
    }

    @Test("A hostile capture costs bounded work: 100,000 pushes within the window are looked at 256 at a time")
    func bounded() throws {
        var packets: [CrossConnOrder.Packet] = []
        for seq in 1...100_000 {
            packets.append(try packet(seq, "c2", #"2["message","x"]"#, .serverToClient, at: 100.0))
        }
        packets.append(try packet(100_001, "c1", #"2["message","x"]"#, .clientToServer, at: 100.0))
        let exemption = try #require(CrossConnOrder(packets).exemptions[100_001])
        #expect(exemption.excused.count == CrossConnOrder.eventsLooked)
    }
}
