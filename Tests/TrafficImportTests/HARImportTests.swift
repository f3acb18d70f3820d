import Foundation
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

    /// Playwright's HAR writes `_webSocketMessages[].time` in milliseconds, DevTools' in seconds.
    @Test("WebSocket message times in milliseconds (Playwright's) read as the same times in seconds (DevTools')")
    func millisecondTimes() throws {
        func imported(_ text: String) throws -> [(String, Double)] {
            var assembler = SessionAssembler()
            var records: [SessionAssembler.Stamped] = []
            for (event, flow) in try HARImport.events(Array(text.utf8)) { records += assembler.take(event, on: flow).records }
            return records.compactMap { record in
                switch record.body {
                case .packet(let packet): (packet.raw, record.time)
                case .engine(let engine): ("engine \(engine.type.rawValue)", record.time)
                default: nil
                }
            }
        }
        var milliseconds = Self.har
        for seconds in ["1796032802.5", "1796032802.6", "1796032802.7", "1796032803.0", "1796032803.1"] {
            let value = Double(seconds)! * 1000
            milliseconds = milliseconds.replacingOccurrences(of: "\"time\": \(seconds)", with: "\"time\": \(value)")
        }
        #expect(milliseconds != Self.har)
        let fromSeconds = try imported(Self.har)
        let fromMilliseconds = try imported(milliseconds)
        #expect(fromMilliseconds.map(\.0) == fromSeconds.map(\.0))
        #expect(zip(fromMilliseconds, fromSeconds).allSatisfy { abs($0.1 - $1.1) < 0.000_5 }, "\(fromMilliseconds) \(fromSeconds)")
        #expect(fromSeconds.last.map { $0.1 > 1_796_032_802 && $0.1 < 1_796_032_804 } == true)
        // Playwright's WebSocket entry lasts as long as the socket: its messages start before the
        // entry's `time` is up, and still belong to the conn.
        let wholeSocket = milliseconds.replacingOccurrences(of: #""time": 0, "_resourceType""#, with: #""time": 900, "_resourceType""#)
        #expect(wholeSocket != milliseconds)
        #expect(try imported(wholeSocket).map(\.0) == fromSeconds.map(\.0))
    }

    @Test("What is not a HAR says so")
    func notHAR() {
        #expect(throws: HARImport.Failed.self) { try HARImport.events(Array("{\"log\": {}}".utf8)) }
        #expect(throws: HARImport.Failed.self) { try HARImport.events(Array("{not json".utf8)) }
    }

    /// Decoys: `entries` keys elsewhere, brackets and escaped quotes inside strings, an entry
    /// holding an `entries` key of its own.
    static let tricky = #"""
    {"pages": [{"entries": [{"x": 1}]}], "log": {"creator": {"name": "]}\"entries\":[", "entries": []},
     "entries": [
      {"request": {"method": "GET", "url": "http://a/socket.io/?EIO=4&transport=polling", "headers": []}, "entries": [{"no": "]"}]},
      {"request": {"method": "GET", "url": "http://a/socket.io/?x=\"}]", "headers": []}}
     ], "after": {"entries": [{"y": 2}]}}}
    """#

    @Test("The scanner finds log.entries' elements whole, wherever the bytes are cut, and nothing that only looks like them")
    func scannerCutAnywhere() throws {
        let bytes = Array(Self.tricky.utf8)
        var whole = HAREntryScanner()
        let expected = try whole.feed(bytes)
        try whole.finish()
        #expect(expected.count == 2)
        #expect(expected.allSatisfy { (try? JSONValue.parse(bytes: $0))?["request"] != nil })
        for cut in 1..<bytes.count {
            var scanner = HAREntryScanner()
            let found = try scanner.feed(Array(bytes[..<cut])) + scanner.feed(Array(bytes[cut...]))
            try scanner.finish()
            #expect(found == expected, "cut at \(cut)")
        }
        // A file that only nests: refused at the limit, not held level by level.
        var deep = HAREntryScanner()
        #expect(throws: HAREntryScanner.Failed.self) { _ = try deep.feed(Array(repeating: UInt8(ascii: "["), count: 1 << 20)) }
        var cutShort = HAREntryScanner()
        _ = try cutShort.feed(Array(bytes[..<(bytes.count / 2)]))
        #expect(throws: HAREntryScanner.Failed.self) { try cutShort.finish() }
    }

    @Test("Every event a HAR gives is written to bytes and read back the same (the disk between the two passes)")
    func eventsRoundTrip() throws {
        var events = try HARImport.events(Array(Self.har.utf8))
        events.append((.webSocket(.close(code: nil), fromClient: true, time: 3), SessionAssembler.Flow(client: nil, server: "h:1", scheme: "https", entry: 7)))
        // A close frame's end (the HAR has no TCP connection to end): it goes to disk too.
        events.append((.ended(fromClient: false, reset: true, time: 3.5), SessionAssembler.Flow(client: nil, server: "h:1", scheme: "https", entry: 7)))
        events.append((.response(HTTPConversation.Head(method: "", target: "", status: 200, headers: [("A", "b")]), body: [0, 255], request: nil, time: -1.5),
                       SessionAssembler.Flow(client: nil, server: "h:1", entry: 8)))
        for (event, flow) in events {
            var bytes: [UInt8] = [9, 9]
            bytes.removeAll()
            HAREventCoding.encode(event, flow: flow, into: &bytes)
            let decoded = try #require(HAREventCoding.decode(bytes))
            #expect(decoded.0 == event)
            #expect(decoded.1 == flow && decoded.1.server == flow.server && decoded.1.scheme == flow.scheme)
            if case .request(let head, _, _) = event, case .request(let back, _, _) = decoded.0 { #expect(head.headers.map(\.value) == back.headers.map(\.value)) }
            #expect(HAREventCoding.decode(Array(bytes.dropLast())) == nil, "cut short: refused")
        }
    }
}
