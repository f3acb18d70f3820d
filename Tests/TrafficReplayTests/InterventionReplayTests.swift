import SocketIOProtocol
import Testing
import TrafficCapture

@testable import TrafficReplay

/// A capture where someone acted on the conn (`intervention` records) replays like one with
/// faults: the session as the peers sent it, or with `--with-faults` as the proxy delivered it.
@Suite("Replaying interventions")
struct InterventionReplayTests {
    static func packet(_ seq: Int, _ text: String, _ dir: Direction) throws -> CaptureRecord {
        var decoder = SocketIODecoder(version: .v5)
        let decoded = try #require(try decoder.decode(text: text))
        return CaptureRecord(seq: seq, ts: "2026-12-05T10:00:0\(seq % 10).000000Z", conn: "c1", .packet(PacketRecord(decoded, raw: text, dir: dir, transport: .websocket)))
    }

    static func intervention(_ seq: Int, _ record: InterventionRecord) -> CaptureRecord {
        CaptureRecord(seq: seq, ts: "2026-12-05T10:00:0\(seq % 10).000000Z", conn: "c1", .intervention(record))
    }

    static func capture() throws -> [CaptureRecord] {
        [
            CaptureRecord(seq: 1, ts: "2026-12-05T10:00:01.000000Z", conn: "c1", .session(SessionRecord(url: "/socket.io/?EIO=4&transport=websocket", eio: .v4, transport: .websocket))),
            try packet(2, "0", .clientToServer),
            try packet(3, #"0{"sid":"x"}"#, .serverToClient),
            // The proxy emitted to the server with an ack; the server's answer was taken out.
            intervention(4, InterventionRecord(action: .emit, by: .api, dir: .clientToServer, raw: #"21000000000["message-with-ack","api"]"#)),
            try packet(5, #"31000000000["api"]"#, .serverToClient),
            intervention(6, InterventionRecord(action: .answer, by: .proxy, dir: .serverToClient, packet: 5, answers: 4)),
            // A held message, edited, and another dropped.
            try packet(7, #"2["message","original"]"#, .clientToServer),
            intervention(8, InterventionRecord(action: .hold, by: .cli, dir: .clientToServer, packet: 7, breakpoint: "b1")),
            intervention(9, InterventionRecord(action: .edit, by: .ui, dir: .clientToServer, packet: 7, breakpoint: "b1", raw: #"2["message","edited"]"#)),
            try packet(10, #"2["message","dropped"]"#, .clientToServer),
            intervention(11, InterventionRecord(action: .drop, by: .api, dir: .clientToServer, packet: 10, breakpoint: "b1")),
        ]
    }

    @Test("Without --with-faults: what the client sent, and no answer to an emit the replay does not make")
    func asSent() throws {
        let script = try #require(Replayer.makeScripts(try Self.capture()).first)
        #expect(script.steps.map(\.packet.raw) == ["0", #"0{"sid":"x"}"#, #"2["message","original"]"#, #"2["message","dropped"]"#])
    }

    @Test("With --with-faults: the proxy's emit sent, its answer expected, the edit sent edited, the drop left out")
    func asDelivered() throws {
        let script = try #require(Replayer.makeScripts(try Self.capture(), withFaults: true).first)
        #expect(script.steps.map(\.seq) == [2, 3, 4, 5, 7])
        #expect(script.steps.map(\.packet.raw) == ["0", #"0{"sid":"x"}"#, #"21000000000["message-with-ack","api"]"#, #"31000000000["api"]"#, #"2["message","edited"]"#])
        #expect(script.steps[2].packet.dir == .clientToServer && script.steps[2].packet.id == 1_000_000_000)
    }

    @Test("An intervention record reads back as it was written")
    func roundTrip() throws {
        let record = Self.intervention(9, InterventionRecord(
            action: .edit, by: .ui, dir: .clientToServer, packet: 7, breakpoint: "b1", raw: #"2["message","edited"]"#,
            attachments: ["AAE="], heldMilliseconds: 1234.5, detail: "why"
        ))
        let line = record.jsonLine
        #expect(line.contains(#""kind":"intervention","conn":"c1","action":"edit","by":"ui","dir":"c2s","packet":7,"breakpoint":"b1""#))
        #expect(try CaptureRecord(jsonLine: line) == record)
    }
}
