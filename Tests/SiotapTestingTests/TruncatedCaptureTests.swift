import Foundation
import SiotapTesting
import TrafficCapture
import Testing

/// A capture cut short (a killed proxy, a full disk, a copy in progress) still reads and replays:
/// every whole line is kept, the cut one is reported once, and nothing traps.
@Suite("A capture cut at any byte", .serialized)
struct TruncatedCaptureTests {
    static func bytes(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: fixtures.appendingPathComponent(name)))
    }

    @Test("The reader keeps every whole line and reports only the cut one", arguments: FixtureTests.names)
    func readerAtEveryByte(name: String) throws {
        let capture = try Self.bytes(name)
        let whole = try CaptureReader.readAll(path: fixtures.appendingPathComponent(name).path)
        #expect(whole.problems.isEmpty)
        let lineEnds = capture.indices.filter { capture[$0] == UInt8(ascii: "\n") }
        #expect(lineEnds.count == whole.records.count)
        let lineStarts = [0] + lineEnds.dropLast().map { $0 + 1 }
        for cut in 0...capture.count {
            // What comes before the line ahead of the cut reads the same whatever the cut, so each
            // cut reads from there: every byte is a cut point without reading the file n times.
            let wholeLines = lineEnds.filter { $0 < cut }.count
            let firstLine = max(0, wholeLines - 1)
            var records: [CaptureRecord] = []
            var problems: [CaptureReadError] = []
            for entry in CaptureReader(bytes: Array(capture[lineStarts[firstLine]..<cut])) {
                switch entry {
                case .record(let record): records.append(record)
                case .problem(let problem): problems.append(problem)
                }
            }
            let kept = wholeLines - firstLine
            let cutMidLine = cut > 0 && capture[cut - 1] != UInt8(ascii: "\n")
            // A cut just before a newline leaves a last line that is whole JSON: it is kept.
            let lastLineComplete = cutMidLine && lineEnds.contains(cut)
            #expect(Array(records.prefix(kept)) == Array(whole.records[firstLine..<wholeLines]), "cut at \(cut)")
            if lastLineComplete {
                #expect(records.count == kept + 1 && problems.isEmpty, "cut at \(cut)")
                #expect(records.last == whole.records[wholeLines], "cut at \(cut)")
            } else if cutMidLine {
                #expect(records.count == kept, "cut at \(cut)")
                #expect(problems.map(\.code) == [.truncatedLastLine], "cut at \(cut): \(problems)")
            } else {
                #expect(records.count == kept && problems.isEmpty, "cut at \(cut)")
            }
        }
    }

    @Test("Replay of a capture cut mid-line finds no missing or changed packet", arguments: ["chat-websocket.jsonl", "conformance-binary.jsonl"])
    func replayCutCaptures(name: String) async throws {
        let capture = try Self.bytes(name)
        let lineStarts = [0] + capture.indices.filter { capture[$0] == UInt8(ascii: "\n") }.map { $0 + 1 }.dropLast()
        let app: SiotapTesting.App = name.hasPrefix("conformance") ? .conformance : .chat
        // Mid-way through every third line: a cut before, inside and after each conn's traffic.
        for (index, start) in lineStarts.enumerated() where index % 3 == 1 {
            let end = capture[start...].firstIndex(of: UInt8(ascii: "\n")) ?? capture.count
            let cut = start + (end - start) / 2
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("siotap-cut-\(UUID().uuidString).jsonl").path
            try Data(capture[..<cut]).write(to: URL(fileURLWithPath: path))
            defer { try? FileManager.default.removeItem(atPath: path) }
            let result: Replayer.Report
            do {
                result = try await SiotapTesting.replay(path, app: app, jwtSecret: fixtureSecret, timeoutMilliseconds: 1_000)
            } catch let error as SiotapTesting.InvalidFixture {
                // Cut inside the first line: nothing to replay, and it says so.
                #expect(index == 0, "cut at \(cut): \(error)")
                continue
            }
            // The server may say more than the cut capture recorded; what was recorded still comes.
            #expect(result.problems.isEmpty, "cut at \(cut): \(result)")
            #expect(result.connections.allSatisfy { $0.missing.isEmpty && $0.changed.isEmpty }, "cut at \(cut): \(result)")
        }
    }
}
