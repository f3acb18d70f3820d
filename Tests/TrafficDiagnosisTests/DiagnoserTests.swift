import Foundation
import Testing
import TrafficCapture

@testable import TrafficDiagnosis

/// The rules, fed capture records as siotap writes them.
@Suite("Diagnoser")
struct DiagnoserTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Records from capture lines; `seq` and `ts` are made up in order (`at` seconds after noon).
    final class Capture {
        var records: [CaptureRecord] = []

        func add(_ at: Double, _ conn: String, _ fields: String) {
            let ts = RFC3339.format(secondsSince1970: 1_796_000_000 + at)
            let line = #"{"seq":\#(records.count + 1),"ts":"\#(ts)","conn":"\#(conn)",\#(fields)}"#
            guard case .record(let record)? = CaptureReader(bytes: Array((line + "\n").utf8)).makeIterator().next() else {
                Issue.record("not a record: \(line)")
                return
            }
            records.append(record)
        }

        func session(_ at: Double, _ conn: String, sid: String = "S1", transport: String = "polling", remote: String = "127.0.0.1:5000", pingInterval: Int = 25000) {
            add(at, conn, #""kind":"session","url":"/socket.io/?EIO=4&transport=\#(transport)","eio":4,"transport":"\#(transport)","sid":"\#(sid)","headers":{"User-Agent":"test"},"remote":"\#(remote)","upstream":"http://127.0.0.1:3001""#)
            add(at, conn, #""kind":"engine","dir":"s2c","transport":"\#(transport)","type":"open","data":{"sid":"\#(sid)","upgrades":["websocket"],"pingInterval":\#(pingInterval),"pingTimeout":20000,"maxPayload":1000}"#)
        }

        var seq: Int { records.count }

        func diagnoses() -> [Diagnoser.Diagnosis] {
            var diagnoser = Diagnoser()
            return records.flatMap { diagnoser.take($0) } + diagnoser.finish()
        }
    }

    @Test("Every code is in docs/diagnoses.md, and every code there is made")
    func documented() throws {
        let text = try String(contentsOf: Self.repository.appendingPathComponent("docs/diagnoses.md"), encoding: .utf8)
        let documented = Set(text.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("| `") else { return nil }
            return line.dropFirst(3).split(separator: "`").first.map(String.init)
        })
        let made = Set(DiagnosisCatalog.all.map(\.code.rawValue))
        #expect(documented == made, "documented only: \(documented.subtracting(made)); made only: \(made.subtracting(documented))")
        #expect(DiagnosisCatalog.all.allSatisfy { $0.docs.hasPrefix("https://socket.io/docs/") })
    }

    @Test("Session ID unknown on a known session is sticky.session_unknown, said once per conn")
    func sticky() {
        let capture = Capture()
        capture.session(0, "c1")
        capture.add(1.5, "c1", #""kind":"error","dir":"s2c","code":"proxy.upstream_status","message":"the server answered 400","raw":"{\"code\":1,\"message\":\"Session ID unknown\"}""#)
        let first = capture.seq
        capture.add(1.6, "c1", #""kind":"error","dir":"s2c","code":"proxy.upstream_status","message":"the server answered 400","raw":"\"Invalid session S1\"""#)
        let found = capture.diagnoses()
        #expect(found.map(\.record.code) == ["sticky.session_unknown"])
        #expect(found.first?.record.evidence == [1, first])
        #expect(found.first?.record.message.contains("S1") == true && found.first?.record.message.contains("1.5 s") == true)
        #expect(found.first?.conn == "c1" && found.first?.record.severity == .error)
    }

    @Test("python-engineio's wording alone is enough; a handshake refused before any sid is not sticky")
    func stickyWordings() {
        let python = Capture()
        python.session(0, "c1")
        python.add(1, "c1", #""kind":"error","dir":"s2c","code":"proxy.upstream_status","message":"the server answered 400","raw":"\"Invalid session S1\"""#)
        #expect(python.diagnoses().map(\.record.code) == ["sticky.session_unknown"])
        let noSid = Capture()
        noSid.add(0, "c1", #""kind":"session","url":"/socket.io/?EIO=4&transport=polling","eio":4,"transport":"polling""#)
        noSid.add(0.1, "c1", #""kind":"error","dir":"s2c","code":"proxy.upstream_status","message":"the server answered 400","raw":"{\"code\":1,\"message\":\"Session ID unknown\"}""#)
        #expect(noSid.diagnoses().isEmpty)
    }

    @Test("A session the client or server was ending meets 'Session ID unknown' as the end's, not a balancer's")
    func stickyAfterAnEnd() {
        let capture = Capture()
        capture.session(0, "c1")
        capture.add(1, "c1", #""kind":"engine","dir":"c2s","transport":"polling","type":"close""#)
        capture.add(1.01, "c1", #""kind":"error","dir":"s2c","code":"proxy.upstream_status","message":"the server answered 400","raw":"{\"code\":1,\"message\":\"Session ID unknown\"}""#)
        #expect(capture.diagnoses().isEmpty)
    }

    @Test("Session ID unknown after an unanswered ping, or after the client went quiet past the heartbeat, is the heartbeat's")
    func unknownAfterTheHeartbeat() {
        func unknown(afterPing: Bool, quietFor: Double) -> [DiagnosisCode] {
            let capture = Capture()
            capture.session(0, "c1", pingInterval: 2000)
            if afterPing { capture.add(1, "c1", #""kind":"engine","dir":"s2c","transport":"polling","type":"ping""#) }
            capture.add(1 + quietFor, "c1", #""kind":"error","dir":"s2c","code":"proxy.upstream_status","message":"the server answered 400","raw":"\"Invalid session S1\"""#)
            return capture.diagnoses().map(\.record.code)
        }
        #expect(unknown(afterPing: true, quietFor: 25) == ["heartbeat.ping_timeout"])
        #expect(unknown(afterPing: false, quietFor: 30) == ["heartbeat.ping_timeout"], "quiet past pingInterval 2 s + pingTimeout 20 s")
        #expect(unknown(afterPing: false, quietFor: 1) == ["sticky.session_unknown"])
        let disconnected = Capture()
        disconnected.session(0, "c1", pingInterval: 2000)
        disconnected.add(30, "c1", #""kind":"error","dir":"s2c","code":"proxy.upstream_status","message":"the server answered 400","raw":"\"'Session is disconnected' S1\"""#)
        #expect(disconnected.diagnoses().map(\.record.code) == ["heartbeat.ping_timeout"], "python-engineio's words for a session it has just ended")
    }

    @Test("A refusal waits for its token's record, which is written after the packets (tokens are judged on the side)")
    func refusalWaitsForItsToken() {
        func refused(tokenRecordAfter: Bool, thenNothing: Bool = false) -> [DiagnosisCode] {
            let capture = Capture()
            capture.session(0, "c1", transport: "websocket")
            capture.add(0.1, "c1", #""kind":"packet","dir":"c2s","transport":"websocket","type":"CONNECT","nsp":"/","data":{"token":"eyJhbGciOiJIUzI1NiJ9.e30.x"},"raw":"0{}""#)
            let jwt = #""kind":"jwt","source":"auth.token","nsp":"/","header":{},"claims":{},"verified":null,"expires_in_s":-30"#
            if !tokenRecordAfter { capture.add(0.1, "c1", jwt) }
            capture.add(0.2, "c1", #""kind":"packet","dir":"s2c","transport":"websocket","type":"CONNECT_ERROR","nsp":"/","data":{"message":"Invalid token"},"raw":"4{}""#)
            if tokenRecordAfter, !thenNothing { capture.add(0.2, "c1", jwt) }
            return capture.diagnoses().map(\.record.code)
        }
        #expect(refused(tokenRecordAfter: false) == ["auth.token_expired"])
        #expect(refused(tokenRecordAfter: true) == ["auth.token_expired"])
        #expect(refused(tokenRecordAfter: true, thenNothing: true) == ["auth.refused"], "decided at the capture's end with what there was")
    }

    @Test("An unanswered ack is said at its conn's end, by event, unless siotap's stop ended the conn")
    func unansweredAck() {
        func capture(closedBy reason: String, answered: Bool = false) -> [Diagnoser.Diagnosis] {
            let capture = Capture()
            capture.session(0, "c1", transport: "websocket")
            capture.add(1, "c1", #""kind":"packet","dir":"c2s","transport":"websocket","type":"EVENT","nsp":"/","id":7,"event":"save","args":[1],"raw":"27[\"save\",1]""#)
            capture.add(1.1, "c1", #""kind":"packet","dir":"c2s","transport":"websocket","type":"EVENT","nsp":"/","id":8,"event":"save","args":[2],"raw":"28[\"save\",2]""#)
            if answered {
                capture.add(1.2, "c1", #""kind":"packet","dir":"s2c","transport":"websocket","type":"ACK","nsp":"/","id":7,"args":[],"raw":"37[]""#)
                capture.add(1.2, "c1", #""kind":"packet","dir":"s2c","transport":"websocket","type":"ACK","nsp":"/","id":8,"args":[],"raw":"38[]""#)
            }
            capture.add(4, "c1", #""kind":"close","by":"client","reason":"\#(reason)""#)
            return capture.diagnoses()
        }
        let found = capture(closedBy: "client closed the websocket")
        #expect(found.map(\.record.code) == ["ack.unanswered"])
        #expect(found.first?.record.message.hasPrefix(#"2 "save" events the client sent"#) == true, "\(found)")
        #expect(found.first?.record.evidence == [3, 4])
        #expect(capture(closedBy: "proxy stopped").isEmpty)
        #expect(capture(closedBy: "client closed the websocket", answered: true).isEmpty)
    }

    @Test("An upstream that closes a quiet WebSocket before the next ping is an intermediary's timeout; after a missed pong, a ping timeout")
    func heartbeats() {
        func closing(after idle: Double, pingUnanswered: Bool = false) -> [DiagnosisCode] {
            let capture = Capture()
            capture.session(0, "c1", transport: "websocket", pingInterval: 25000)
            capture.add(1, "c1", #""kind":"packet","dir":"c2s","transport":"websocket","type":"EVENT","nsp":"/","event":"hi","args":[],"raw":"2[\"hi\"]""#)
            if pingUnanswered { capture.add(1, "c1", #""kind":"engine","dir":"s2c","transport":"websocket","type":"ping""#) }
            capture.add(1 + idle, "c1", #""kind":"close","by":"server","reason":"server closed the websocket""#)
            return capture.diagnoses().map(\.record.code)
        }
        #expect(closing(after: 3) == ["heartbeat.intermediary_timeout"])
        #expect(closing(after: 0.2).isEmpty, "a server closing at once did it on purpose")
        #expect(closing(after: 26).isEmpty, "past pingInterval: the server had its own reasons")
        #expect(closing(after: 10, pingUnanswered: true).isEmpty, "a ping waiting for 10 s of a 20 s pingTimeout: neither")
        #expect(closing(after: 20, pingUnanswered: true) == ["heartbeat.ping_timeout"])
    }

    @Test("A message over the announced maxPayload, then the server's close, is payload.too_large")
    func payload() {
        let capture = Capture()
        capture.session(0, "c1", transport: "websocket")
        let big = String(repeating: "x", count: 1200)
        capture.add(1, "c1", #""kind":"packet","dir":"c2s","transport":"websocket","type":"EVENT","nsp":"/","event":"up","args":["\#(big)"],"raw":"2[\"up\",\"\#(big)\"]""#)
        capture.add(1.01, "c1", #""kind":"close","by":"server","reason":"server closed the websocket""#)
        let found = capture.diagnoses()
        #expect(found.map(\.record.code) == ["payload.too_large"])
        #expect(found.first?.record.message.contains("1000 bytes of maxPayload") == true)
    }

    @Test("Five conns of one client refused within a minute are a reconnect storm, said once; four are not")
    func storm() {
        func refusals(_ count: Int, remotes: (Int) -> String = { "10.0.0.7:\(5000 + $0)" }) -> [DiagnosisCode] {
            let capture = Capture()
            for index in 0..<count {
                let conn = "c\(index + 1)"
                capture.session(Double(index), conn, sid: "S\(index)", remote: remotes(index))
                capture.add(Double(index) + 0.1, conn, #""kind":"packet","dir":"c2s","transport":"polling","type":"CONNECT","nsp":"/","raw":"0""#)
                capture.add(Double(index) + 0.2, conn, #""kind":"packet","dir":"s2c","transport":"polling","type":"CONNECT_ERROR","nsp":"/","data":{"message":"not allowed"},"raw":"4{}""#)
                capture.add(Double(index) + 0.3, conn, #""kind":"close","by":"server","reason":"close packet""#)
            }
            return capture.diagnoses().map(\.record.code).filter { $0 == "client.reconnect_storm" }
        }
        #expect(refusals(4).isEmpty)
        #expect(refusals(5) == ["client.reconnect_storm"])
        #expect(refusals(9) == ["client.reconnect_storm"])
        #expect(refusals(6, remotes: { "10.0.0.\($0):5000" }).isEmpty, "six clients, one refusal each")
    }

    @Test("Memory is bounded: conns that never close are forgotten past the limit, acks past theirs")
    func bounded() {
        var diagnoser = Diagnoser()
        for index in 0..<(Diagnoser.maxConns + 500) {
            let record = CaptureRecord(seq: index + 1, ts: "2026-12-05T12:00:00.000000Z", conn: "c\(index)", .session(SessionRecord(url: "/", eio: .v4, transport: .websocket)))
            _ = diagnoser.take(record)
        }
        #expect(diagnoser.conns.count == Diagnoser.maxConns)
        #expect(diagnoser.conns["c0"] == nil && diagnoser.conns["c\(Diagnoser.maxConns + 499)"] != nil)
        let conn = "c\(Diagnoser.maxConns + 499)"
        for id in 0..<3000 {
            var packet = PacketRecord(dir: .clientToServer, transport: .websocket, type: .event, nsp: "/", raw: "2")
            packet.id = UInt64(id)
            packet.event = "e"
            _ = diagnoser.take(CaptureRecord(seq: 100_000 + id, ts: "2026-12-05T12:00:00.000000Z", conn: conn, .packet(packet)))
        }
        #expect(diagnoser.conns[conn]?.conn.acks.count == Diagnoser.maxPendingAcks)
    }

    @Test("The fixtures diagnose clean, but for the refused tokens, each named for what was wrong with it")
    func fixtures() throws {
        let folder = Self.repository.appendingPathComponent("fixtures")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".jsonl") }.sorted()
        #expect(files.count >= 5)
        for file in files {
            var diagnoser = Diagnoser()
            let (records, _) = try CaptureReader.readAll(path: folder.appendingPathComponent(file).path)
            let codes = records.flatMap { diagnoser.take($0) }.map(\.record.code.rawValue)
            if file == "chat-refused-tokens.jsonl" {
                #expect(codes == ["auth.token_missing", "auth.token_bad_signature", "auth.token_expired"])
            } else {
                #expect(codes.isEmpty, "\(file): \(codes)")
            }
        }
    }
}
