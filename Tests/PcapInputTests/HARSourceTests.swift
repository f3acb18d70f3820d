import Foundation
import Testing
import TrafficCapture
import TrafficImport

@testable import PcapInput

/// A HAR file read through: its events in time order (whatever the file's order), and files that
/// are not HAR refused with a message.
@Suite("HAR files")
struct HARSourceTests {
    static func file(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("siotap-\(UUID().uuidString).har").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func entry(_ started: String, sid: String?) -> String {
        let query = "EIO=4&transport=polling" + (sid.map { "&sid=\($0)" } ?? "")
        return #"""
            {"startedDateTime":"\#(started)","time":1,"request":{"method":"GET","url":"http://127.0.0.1:3000/socket.io/?\#(query)","httpVersion":"HTTP/1.1","headers":[],"queryString":[],"cookies":[],"headersSize":-1,"bodySize":0},
             "response":{"status":200,"statusText":"OK","httpVersion":"HTTP/1.1","headers":[],"cookies":[],"content":{"size":2,"mimeType":"text/plain","text":"\#(sid == nil ? #"0{\"sid\":\"abc\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}"# : "6")"},"redirectURL":"","headersSize":-1,"bodySize":2},
             "cache":{},"timings":{"send":0,"wait":1,"receive":0}}
            """#
    }

    @Test("Events come in time order, the file's order aside")
    func ordered() throws {
        let later = Self.entry("2026-12-05T10:00:02.000Z", sid: "abc"), earlier = Self.entry("2026-12-05T10:00:01.000Z", sid: nil)
        let path = try Self.file(#"{"log":{"version":"1.2","creator":{"name":"t","version":"1"},"entries":[\#(later),\#(earlier)]}}"#)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let source = try HARSource(path: path)
        #expect(source.entries == 2)
        var targets: [String] = []
        while let (event, _) = try source.nextEvent() {
            if case .request(let head, _, _) = event { targets.append(head.target) }
        }
        #expect(targets == ["/socket.io/?EIO=4&transport=polling", "/socket.io/?EIO=4&transport=polling&sid=abc"])
    }

    @Test("A WebSocket's close frame ends its conn, through the events' disk form (a fuzzer found it lost there)")
    func closeFrame() throws {
        let entry = #"""
            {"startedDateTime":"2026-11-30T10:00:00.000Z","time":1,"request":{"method":"GET","url":"ws://127.0.0.1:3000/socket.io/?EIO=4&transport=websocket","headers":[]},
             "response":{"status":101,"headers":[],"content":{}},
             "_webSocketMessages":[{"type":"receive","time":1796032800.5,"opcode":1,"data":"0{\"sid\":\"W1\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000}"},
                                   {"type":"send","time":1796032800.6,"opcode":1,"data":"40"},
                                   {"type":"receive","time":1796032801.0,"opcode":8,"data":""}]}
            """#
        let path = try Self.file(#"{"log":{"entries":[\#(entry)]}}"#)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let source = try HARSource(path: path)
        var assembler = SessionAssembler()
        var records: [CaptureRecord.Body] = []
        while let (event, flow) = try source.nextEvent() { records += assembler.take(event, on: flow).records.map(\.body) }
        records += assembler.finish(time: 1_796_032_900).records.map(\.body)
        guard case .close(let close)? = records.last else {
            Issue.record("no close: \(records)")
            return
        }
        #expect(close.by == .server, "\(records)")
        #expect(close.reason == "server closed the websocket")
    }

    @Test("What is not HAR, or not there, is refused with a message")
    func refused() throws {
        let path = try Self.file("[[[[")
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: HARSource.Failure.self) { try HARSource(path: path) }
        do { _ = try HARSource(path: path + ".missing") } catch { #expect(error.message.hasPrefix("cannot open")) }
    }
}
