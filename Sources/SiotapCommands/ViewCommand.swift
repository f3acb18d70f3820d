import ArgumentParser
import Foundation
import SiotapInspector
import SocketIOProtocol
import TrafficCapture

struct ViewCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "view",
        abstract: "Open a capture in the web inspector, and follow it while it grows.",
        discussion: """
            Serves the inspector (a page in your browser: connections, a timeline per connection with \
            arguments as JSON trees, acks drawn to their events with their latency, attachments, \
            tokens) on --ui, 127.0.0.1:8081 unless told otherwise, and prints its URL. The file is \
            read to its end and then followed, like tail -f, so a capture a proxy is still writing \
            shows live. Lines that are not records are reported on stderr and skipped.

            --report shows a replay's differences (siotap replay CAPTURE --report FILE) beside the \
            capture's records: per conn, what changed (the JSON paths highlighted, expected against \
            what came), what never came, and what came unrecorded.

            Keys in the page: j/k move through the timeline, enter opens every branch of the \
            selected record, / goes to the filter (the same terms as siotap proxy --filter), space \
            pauses the live tail. The URL keeps the selected conn and filter, to share.

            Exit codes: 0 stopped by SIGINT or SIGTERM; 1 the inspector cannot listen; 2 the capture \
            cannot be opened, or wrong arguments.

            Examples:
              siotap view session.jsonl
              siotap view session.jsonl --ui 127.0.0.1:9000
              siotap proxy --record live.jsonl --quiet & siotap view live.jsonl
              siotap replay session.jsonl --report diff.json; siotap view session.jsonl --report diff.json
            """
    )

    @Argument(help: "The capture file (JSONL, capture format v1).")
    var capture: String

    @OptionGroup var inspector: InspectorOptions

    @Option(help: "A replay's report of this capture (siotap replay --report FILE), shown with its records.")
    var report: String?

    func run() async throws {
        let io = CommandIO.current
        let reader = CaptureReader.following(path: capture)
        if let openError = reader.openError { throw CommandFailure(.badInput, openError.detail) }
        let reportBytes = try report.map { path -> [UInt8] in
            guard let data = FileManager.default.contents(atPath: path) else { throw CommandFailure(.badInput, "cannot read \(path)") }
            guard (try? JSONValue.parse(String(decoding: data, as: UTF8.self))) != nil else {
                throw CommandFailure(.badInput, "\(path) is not JSON (siotap replay --report writes it)")
            }
            return Array(data)
        }
        let feed = InspectorFeed(source: capture, capacity: inspector.buffer)
        var problems = 0
        func readAvailable() {
            while let entry = reader.next() {
                switch entry {
                case .record(let record): feed.add(record, line: reader.lastLine)
                case .problem(let problem):
                    problems += 1
                    if problems <= 20 { io.writeError("siotap view: \(capture): \(problem)\n") }
                }
            }
        }
        readAvailable()
        let signals = SignalWaiter()
        let address = inspector.address ?? ListenAddress(host: "127.0.0.1", port: 8081)
        let server = try await InspectorOptions.start(at: address, allowRemote: inspector.allowRemote, feed: feed, report: reportBytes)
        io.writeError("siotap view: the inspector is at \(server.url) (following \(capture); Ctrl-C stops)\n")
        let following = Task {
            while !Task.isCancelled {
                readAvailable()
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
        await signals.wait()
        following.cancel()
        await server.stop()
        io.writeError("siotap view: stopped\n")
    }
}
