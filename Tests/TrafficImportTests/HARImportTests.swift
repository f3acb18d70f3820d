import SocketIOProtocol
import Testing
import TrafficCapture

@testable import TrafficImport

/// HAR entries to sessions: polling entries joined with their WebSocket by sid, in time order.
@Suite("HAR import")
struct HARImportTests {
    static let har = #"""
    {"log": {"version": "1.2", "entries": [
      {"startedDateTime": "2026-11-30T10:00:01.000Z", "time": 5,
       "request": {"method": "POST", "url": "http://localhost:3000/socket.io/?EIO=4&transport=polling&sid=S1",
                   "headers": [{"name": ":authority", "value": "x"}, {"name": "Content-Type", "value": "text/plain"}], "postData": {"text": "40"}},
       "response": {"status": 200, "headers": [], "content": {"text": "ok"}}},
      {"startedDateTime": "2026-11-30T10:00:00.000Z", "time": 10,
       "request": {"method": "GET", "url": "http://localhost:3000/socket.io/?EIO=4&transport=polling", "headers": [{"name": "Host", "value": "localhost:3000"}]},
       "response": {"status": 200, "headers": [],
                    "content": {"encoding": "base64", "text": "MHsic2lkIjoiUzEiLCJ1cGdyYWRlcyI6WyJ3ZWJzb2NrZXQiXSwicGluZ0ludGVydmFsIjoyNTAwMCwicGluZ1RpbWVvdXQiOjIwMDAwfQ=="}}},
      {"startedDateTime": "2026-11-30T10:00:02.000Z", "time": 0, "_resourceType": "websocket",
       "request": {"method": "GET", "url": "ws://localhost:3000/socket.io/?EIO=4&transport=websocket&sid=S1", "headers": []},
       "response": {"status": 101, "headers": [{"name": "Upgrade", "value": "websocket"}], "content": {}},
       "_webSocketMessages": [
         {"type": "send", "time": 1796032802.5, "opcode": 1, "data": "2probe"},
         {"type": "receive", "time": 1796032802.6, "opcode": 1, "data": "3probe"},
         {"type": "send", "time": 1796032802.7, "opcode": 1, "data": "5"},
         {"type": "send", "time": 1796032803.0, "opcode": 1, "data": "42[\"hi\",1.50]"},
         {"type": "receive", "time": 1796032803.1, "opcode": 2, "data": "BAEC"}]}
    ]}}
    """#

    @Test("Entries in time order, polling joined to the WebSocket by sid, bodies base64 or not, binary messages decoded")
    func session() throws {
        var assembler = SessionAssembler()
        var records: [SessionAssembler.Stamped] = []
        for (event, flow) in try HARImport.events(Array(Self.har.utf8)) { records += assembler.take(event, on: flow).records }
        records += assembler.finish(time: 1_796_032_804).records
        #expect(Set(records.compactMap(\.conn)) == ["c1"])
        guard case .session(let session) = records.first?.body else { Issue.record("no session first: \(records)"); return }
        #expect(session.sid == "S1" && session.transport == .polling && session.upstream == "http://localhost:3000" && session.remote == nil)
        let packets = records.compactMap { record -> String? in
            guard case .packet(let packet) = record.body else { return nil }
            return "\(packet.dir.rawValue) \(packet.transport.rawValue) \(packet.raw)"
        }
        #expect(packets == ["c2s polling 0", #"c2s websocket 2["hi",1.50]"#], "raw is the Socket.IO packet, without its Engine.IO type")
        let times = records.map(\.time)
        #expect(times == times.sorted())
        #expect(records.contains { if case .engine(let engine) = $0.body { engine.type == .upgrade } else { false } })
    }

    @Test("What is not a HAR says so")
    func notHAR() {
        #expect(throws: HARImport.Failed.self) { try HARImport.events(Array("{\"log\": {}}".utf8)) }
        #expect(throws: HARImport.Failed.self) { try HARImport.events(Array("{not json".utf8)) }
    }
}
