import Foundation
import JWTInspection
import Synchronization
import Testing
import TrafficCapture

@testable import TrafficImport

/// The pipeline `siotap import` and `sniff` run: records into a queue in time order, tokens
/// judged at the time they were seen, a write failure stopping the import.
@Suite("Import pipeline")
struct ImportPipelineTests {
    /// A CONNECT at 10:00:01 whose token expires a minute later: long expired today.
    static let har = #"""
    {"log": {"version": "1.2", "entries": [
      {"startedDateTime": "2026-11-30T10:00:00.000Z", "time": 10,
       "request": {"method": "GET", "url": "http://localhost:3000/socket.io/?EIO=4&transport=polling", "headers": []},
       "response": {"status": 200, "headers": [], "content": {"text": "0{\"sid\":\"S1\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000}"}}},
      {"startedDateTime": "2026-11-30T10:00:01.000Z", "time": 5,
       "request": {"method": "POST", "url": "http://localhost:3000/socket.io/?EIO=4&transport=polling&sid=S1", "headers": [],
                   "postData": {"text": "40{\"token\":\"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhZGEiLCJleHAiOjE3OTYwMzI4NjF9.c2ln\"}"}},
       "response": {"status": 200, "headers": [], "content": {"text": "ok"}}}
    ]}}
    """#

    static func run(flushed: @escaping () throws -> Void = {}) async throws -> [CaptureRecord] {
        let written = Mutex<[CaptureRecord]>([])
        let queue = CaptureQueue(writer: nil, draining: .onFlush, delivered: { line in written.withLock { $0.append(line.record) } })
        let pipeline = ImportPipeline(importer: TrafficImporter(), inspector: JWTInspector(), queue: queue, flushed: flushed)
        for (event, flow) in try HARImport.events(Array(har.utf8)) { try await pipeline.take(event, on: flow) }
        try await pipeline.finish()
        queue.close()
        #expect(pipeline.summary.conns == 1)
        return written.withLock { $0 }
    }

    @Test("A token is judged at the time it was captured, and its record goes where that time puts it")
    func tokenJudgedThen() async throws {
        let records = try await Self.run()
        let kinds = records.map(\.kind.rawValue)
        #expect(kinds == ["session", "engine", "packet", "jwt", "close"], "\(kinds)")
        guard let jwt = records.first(where: { $0.kind == .jwt }), case .jwt(let token) = jwt.body else { return }
        let remaining = try #require(token.expiresInSeconds)
        #expect((58...60).contains(remaining), "a minute left at 10:00:01, not expired by now: \(remaining)")
        #expect(token.source.description == "auth.token" && token.reason == nil)
        let seqs = records.map(\.seq)
        #expect(seqs == Array(1...records.count))
    }

    struct Full: Error {}

    @Test("A capture that cannot be written stops the import at the batch that found it")
    func writeFailureStops() async throws {
        // One POST of 600 events: past the 512 records of a batch, so the queue is flushed there.
        let events = (1...600).map { #"42[\"n\",\#($0)]"# }.joined(separator: "\\u001e")
        let har = Self.har.replacingOccurrences(of: #"40{\"token\""#, with: #"40\u001e"# + events + #"\u001e40{\"token\""#)
        let queue = CaptureQueue(writer: nil, draining: .onFlush)
        let pipeline = ImportPipeline(importer: TrafficImporter(), inspector: JWTInspector(), queue: queue, flushed: { throw Full() })
        var taken = 0
        await #expect(throws: Full.self) {
            for (event, flow) in try HARImport.events(Array(har.utf8)) {
                try await pipeline.take(event, on: flow)
                taken += 1
            }
        }
        #expect(taken < 3, "stopped at the POST's answer, before the end")
        queue.close()
    }
}
