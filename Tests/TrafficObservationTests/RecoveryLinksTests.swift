import SocketIOProtocol
import Testing

import TrafficCapture
@testable import TrafficObservation

/// The link from a CONNECT asking a session back to the conn that had it, which the proxy and
/// `import` both make with one ``RecoveryLinks``.
@Suite("Recovery links")
struct RecoveryLinksTests {
    func connect(_ text: String, _ dir: Direction) throws -> [CaptureRecord.Body] {
        var decoder = SocketIODecoder(version: .v5)
        let packet = try #require(try decoder.decode(text: text))
        return [.packet(PacketRecord(packet, raw: text, dir: dir, transport: .websocket))]
    }

    func recovers(_ records: [CaptureRecord.Body]) -> String? {
        if case .packet(let packet)? = records.first { packet.recovers } else { nil }
    }

    @Test("A CONNECT asking a pid back names the conn whose answer gave it, the latest one on a second recovery")
    func links() throws {
        var links = RecoveryLinks()
        var answer = try connect(#"0{"sid":"s1","pid":"p1"}"#, .serverToClient)
        links.link(&answer, dir: .serverToClient, conn: "c1")
        var ask = try connect(#"0{"pid":"p1","offset":"o1"}"#, .clientToServer)
        links.link(&ask, dir: .clientToServer, conn: "c2")
        #expect(recovers(ask) == "c1")
        var again = try connect(#"0{"sid":"s2","pid":"p1"}"#, .serverToClient)
        links.link(&again, dir: .serverToClient, conn: "c2")
        var second = try connect(#"0{"pid":"p1","offset":"o2"}"#, .clientToServer)
        links.link(&second, dir: .clientToServer, conn: "c3")
        #expect(recovers(second) == "c2")
        var unknown = try connect(#"0{"pid":"nobody","offset":"o"}"#, .clientToServer)
        links.link(&unknown, dir: .clientToServer, conn: "c4")
        #expect(recovers(unknown) == nil)
    }

    @Test("Past its capacity it forgets the oldest pids, in batches; the recent ones stay linked")
    func bounded() throws {
        var links = RecoveryLinks()
        let count = 2 * RecoveryLinks.capacity + 1
        for index in 0..<count {
            var answer = try connect(#"0{"sid":"s","pid":"p\#(index)"}"#, .serverToClient)
            links.link(&answer, dir: .serverToClient, conn: "c\(index)")
        }
        var oldest = try connect(#"0{"pid":"p0","offset":"o"}"#, .clientToServer)
        links.link(&oldest, dir: .clientToServer, conn: "x")
        #expect(recovers(oldest) == nil)
        var latest = try connect(#"0{"pid":"p\#(count - 1)","offset":"o"}"#, .clientToServer)
        links.link(&latest, dir: .clientToServer, conn: "x")
        #expect(recovers(latest) == "c\(count - 1)")
        var recent = try connect(#"0{"pid":"p\#(count - RecoveryLinks.capacity)","offset":"o"}"#, .clientToServer)
        links.link(&recent, dir: .clientToServer, conn: "x")
        #expect(recovers(recent) == "c\(count - RecoveryLinks.capacity)")
    }
}
