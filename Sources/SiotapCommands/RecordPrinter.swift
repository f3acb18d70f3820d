import SocketIOProxy
import TrafficCapture

/// Records as a command shows them: one readable, colored line each on a terminal; capture-format
/// JSONL with `--json` or when the output is not a terminal.
struct RecordPrinter: Sendable {
    let io: CommandIO
    let asJSON: Bool
    let view: RecordView

    init(io: CommandIO, json: Bool) {
        self.io = io
        asJSON = json || !io.colors
        view = RecordView(style: Styling(enabled: io.colors && !json), width: TerminalSize.columns(io.environment))
    }

    func print(_ record: CaptureRecord) {
        io.write((asJSON ? record.jsonLine : view.line(record)) + "\n")
    }

    /// A record as written: with `--json`, the very line the file got.
    func print(_ line: CaptureLine) {
        io.write((asJSON ? line.text : view.line(line.record)) + "\n")
    }
}

extension SocketIOProxy {
    /// A proxy whose records go to `queue`, and which stops reading while the queue is behind.
    convenience init(configuration: ProxyConfiguration, recordingInto queue: CaptureQueue) {
        self.init(
            configuration: configuration,
            readGate: { resume in queue.admit(orResume: resume) },
            sink: { body, conn in queue.add(body, conn: conn) }
        )
    }
}
