import Foundation
import Histogram
import LoadGeneration
import SocketIOProtocol
import Testing
import TrafficCapture
import TrafficReplay

@testable import LoadGeneration

@Suite("siotap load's parts")
struct LoadGenerationTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fixtures")

    @Test("--fail-if reads its terms and names the broken ones with the values they had")
    func failConditions() throws {
        let condition = try FailCondition("p99>200ms, errors>0.5%,connect_max>=1s")
        #expect(condition.terms.map(\.metric) == ["p99", "errors", "connect_max"])
        #expect(condition.terms[0].value == 200_000 && condition.terms[1].percent && condition.terms[2].comparison == ">=")
        let metrics = LoadMetrics()
        metrics.started()
        metrics.connected(.milliseconds(1000))
        for milliseconds in 1...100 { metrics.ack("ask", .milliseconds(milliseconds * 3)) }
        metrics.error(.ackTimeout)
        let broken = condition.broken(by: metrics.snapshot)
        // p99 of 3..300 ms is 297 ms; 1 error in 1 session + 100 acks + 1 timeout; the connect took 1 s.
        #expect(broken.count == 3)
        #expect(broken[0].hasPrefix("p99>200ms (was 29"))
        #expect(broken[1] == "errors>0.5% (was 0.98%)")
        #expect(try FailCondition("p99>1s,errors>1").broken(by: metrics.snapshot).isEmpty)
        for bad in ["p99", "p98>1ms", "p99>fast", "errors>x", "p99=>1ms", ""] {
            #expect(throws: FailCondition.Invalid.self, "\(bad)") { try FailCondition(bad) }
        }
    }

    @Test("--claim templates: {user} is the user's number; JSON stays JSON, anything else is a string")
    func claims() throws {
        #expect(try ClaimTemplate("id={user}").value(user: 7) == .number(JSONNumber(7)))
        #expect(try ClaimTemplate("sub=\"u{user}\"").value(user: 7) == .string(JSONString("u7")))
        #expect(try ClaimTemplate("name=user-{user}").value(user: 12) == .string(JSONString("user-12")))
        #expect(try ClaimTemplate("admin=false").value(user: 1) == .bool(false))
        #expect(throws: ClaimTemplate.Invalid.self) { try ClaimTemplate("no-equals") }
    }

    @Test("Only what a conn's own packet caused is waited for: broadcasts another conn caused are counted, not expected")
    func causality() throws {
        let records = try CaptureReader.readAll(path: Self.fixtures.appendingPathComponent("chat-websocket.jsonl").path).records
        let causes = LoadRunner.causes(records)
        let names = records.filter { causes[$0.seq] != nil }.compactMap { record -> String? in
            guard case .packet(let packet) = record.body else { return nil }
            return "\(record.conn ?? "") \(packet.event ?? "") <- \(causes[record.seq]!)"
        }
        // c1's message (13) is answered to c1 (chat response) and broadcast to c2 (message): only
        // the first is c1's to wait for; bob's notify (18) reaches alice, who does not wait for it.
        #expect(names == ["c1 chat response <- 13", "c1 roomJoined <- 16", "c2 user disconnected <- 20"])
        // Two CONNECTs back to back: each namespace's event is caused by its own CONNECT.
        let conformance = try CaptureReader.readAll(path: Self.fixtures.appendingPathComponent("conformance-binary.jsonl").path).records
        #expect(LoadRunner.causes(conformance) == [5: 3, 7: 4, 10: 9])
        #expect(LoadRunner.scripts(records, pick: try CaptureFilter("event=notify")).map(\.conn) == ["c2"])
        #expect(LoadRunner.scripts(records, pick: nil).map(\.conn) == ["c1", "c2"])
    }

    @Test("The JSON result holds every figure, in the documented shape")
    func json() throws {
        let metrics = LoadMetrics()
        metrics.started()
        metrics.connected(.milliseconds(4))
        metrics.ack("message-with-ack", .microseconds(1500))
        metrics.event("chat response", .milliseconds(2))
        metrics.received("chat response")
        metrics.ended(wasConnected: true, done: true)
        let json = LoadReport.json(metrics.snapshot, duration: 1.5, memory: (peakKB: 20480, baselineKB: 10240), broken: [])
        #expect(json["users"]?["completed"] == 1 && json["users"]?["peak"] == 1)
        #expect(json["acks"]?["message-with-ack"]?["count"] == 1)
        #expect(json["acks"]?["message-with-ack"]?["p50_ms"]?.numberValue?.doubleValue == 1.5)
        #expect(json["events"]?["chat response"]?["p99_ms"]?.numberValue?.doubleValue == 2)
        #expect(json["connect_ms"]?["max_ms"]?.numberValue?.doubleValue == 4)
        #expect(json["memory"]?["per_user_kb"]?.numberValue?.doubleValue == 10240)
        #expect(json["errors"] == .object(JSONObject()))
    }
}

@Suite("HdrHistogram logs")
struct HistogramLogTests {
    @Test("A histogram goes through HdrHistogram's compressed encoding and back unchanged")
    func roundTrip() throws {
        var histogram = LoadMetrics.histogram()
        for value: UInt64 in [1, 2, 2, 999, 1000, 2047, 2048, 2049, 123_456, 3_000_000, 3_599_999_999] { _ = histogram.record(value) }
        _ = histogram.record(77, count: 5000)
        let text = HistogramLog.encode(histogram)
        #expect(text.hasPrefix("HISTF"))
        let back = try HistogramLog.decode(text)
        #expect(back.totalCount == histogram.totalCount)
        for percentile in [0.0, 10, 50, 90, 99, 99.9] {
            #expect(back.valueAtPercentile(percentile) == histogram.valueAtPercentile(percentile), "p\(percentile)")
        }
        // Counts keep their bucket, not the exact value: the largest comes back as its bucket's.
        #expect(back.valuesAreEquivalent(back.maxRecorded, histogram.maxRecorded))
        #expect(try HistogramLog.decode(HistogramLog.encode(LoadMetrics.histogram())).totalCount == 0)
        #expect(throws: HistogramLog.Invalid.self) { try HistogramLog.decode("not a histogram") }
        #expect(throws: HistogramLog.Invalid.self) { try HistogramLog.decode(String(text.dropLast(8))) }
    }

    @Test("Two workers' logs add up to what one run of both would show")
    func merge() throws {
        func run(_ values: [UInt64], received: Int) -> LoadMetrics.Snapshot {
            let metrics = LoadMetrics()
            for value in values {
                metrics.started()
                metrics.connected(.microseconds(Int64(value)))
                metrics.ack("ask", .microseconds(Int64(value * 2)))
                metrics.ended(wasConnected: true, done: true)
            }
            for _ in 0..<received { metrics.received("news") }
            metrics.error(.ackTimeout)
            return metrics.snapshot
        }
        let first = run([100, 200, 300], received: 4), second = run([5000, 6000], received: 1)
        let logs = [first, second].enumerated().map { index, snapshot in
            (name: "w\(index)", text: HistogramLog.write(snapshot, start: 1_800_000_000, duration: 2, memory: (peakKB: 100, baselineKB: 50), worker: "worker \(index) of 2"))
        }
        let merged = try HistogramLog.merge(logs)
        let both = run([100, 200, 300, 5000, 6000], received: 5)
        #expect(merged.files == 2)
        #expect(merged.snapshot.started == 5 && merged.snapshot.completed == 5)
        #expect(merged.snapshot.received == ["news": 5] && merged.snapshot.errors == [.ackTimeout: 2])
        #expect(merged.snapshot.acks["ask"]?.totalCount == 5)
        for percentile in [50.0, 90, 100] {
            #expect(merged.snapshot.acks["ask"]?.valueAtPercentile(percentile) == both.acks["ask"]?.valueAtPercentile(percentile))
            #expect(merged.snapshot.connect.valueAtPercentile(percentile) == both.connect.valueAtPercentile(percentile))
        }
        #expect(throws: HistogramLog.Invalid.self) { try HistogramLog.merge([("x", "Tag=a,0,1,2,HISTFAAAAA==\n")]) }
    }

    @Test("A stranger's log can neither crash a merge nor make it grow past its bounds")
    func hostileLogs() throws {
        func histogram(_ values: [Int64]) -> String {
            var payload: [UInt8] = []
            for value in values { HistogramLog.writeZigZag(value, to: &payload) }
            return HistogramLog.envelope(payload)
        }
        // A zero run of Int64.min (negating it traps), a run past the last bucket, a count over 2^40.
        for values: [Int64] in [[.min], [-(1 << 40), 1], [1 << 41], [1 << 39, 1 << 39, 1 << 39]] {
            #expect(throws: HistogramLog.Invalid.self, "\(values)") { try HistogramLog.decode(histogram(values)) }
        }
        #expect(try HistogramLog.decode(histogram([-3, 1 << 39])).totalCount == 1 << 39)
        // The fuzzer's find: counts within bounds, but of hour-long values, whose sum HdrHistogram's
        // iterators keep in 64 bits (it trapped when the histogram was encoded again).
        #expect(throws: HistogramLog.Invalid.self) { try HistogramLog.decode(histogram([-20_704, 257_698_037_760])) }
        #expect(throws: HistogramLog.Invalid.self) { try HistogramLog.decode(histogram([-20_704, 1 << 32, 1 << 32])) }
        // The fuzzer's second: a sum near 2^62, then a product near 2^64 added to it.
        let found = Array(Data(base64Encoded: "AUAKDyeBQDCAgCeBQDCAgICAgA4nDgFACicPJ4FAMICAgICAAUAKDyeBQDCAgCeBQDCAgICAgA4nD4CADw4n")!.dropFirst())
        #expect(throws: HistogramLog.Invalid.self) { try HistogramLog.decode(HistogramLog.envelope(found)) }
        let heavy = HistogramLog.encode(try HistogramLog.decode(histogram([-20_704, 1 << 32])))
        #expect(throws: HistogramLog.Invalid.self) { try HistogramLog.merge([("a", "#[siotap: {}]\n" + Array(repeating: "Tag=ack:x,0,1,2,\(heavy)", count: 2).joined(separator: "\n"))]) }
        // Counters near Int.max, added up across logs, are held; 300 event names share 256 histograms.
        let counters = #"#[siotap: {"started":9223372036854775807,"peak":-5,"received":{"a":9223372036854775807},"errors":{"refused":9223372036854775807}}]"#
        var lines = [counters]
        for index in 0..<300 { lines.append("Tag=ack:e\(index),0.000,1.000,0.001,\(histogram([0, 1]))") }
        let text = lines.joined(separator: "\n")
        let merged = try HistogramLog.merge([("a", text), ("b", text)])
        #expect(merged.snapshot.started == 2 << 40 && merged.snapshot.peakConnected == 0)
        #expect(merged.snapshot.received == ["a": 2 << 40] && merged.snapshot.errors == [.refused: 2 << 40])
        #expect(merged.snapshot.acks.count == LoadMetrics.largestNameCount)
        #expect(merged.snapshot.acks[LoadMetrics.otherNames]?.totalCount == UInt64(2 * (300 - LoadMetrics.largestNameCount + 1)))
    }

    @Test("A run measures at most 256 names apart; the rest share one histogram")
    func boundedNames() {
        let metrics = LoadMetrics()
        for index in 0..<1000 {
            metrics.ack("a\(index)", .milliseconds(1))
            metrics.event("e\(index)", .milliseconds(1))
            metrics.received("r\(index)")
        }
        let snapshot = metrics.snapshot
        #expect(snapshot.acks.count == 256 && snapshot.events.count == 256 && snapshot.received.count == 256)
        #expect(snapshot.acks[LoadMetrics.otherNames]?.totalCount == 745 && snapshot.received[LoadMetrics.otherNames] == 745)
        #expect(snapshot.acks["a0"]?.totalCount == 1)
    }
}
