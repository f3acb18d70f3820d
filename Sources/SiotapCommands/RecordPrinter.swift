import SocketIOProxy
import TrafficCapture

/// Records as a command shows them: one readable line each (colored on a terminal), or
/// capture-format JSONL (see ``OutputFormatOptions``).
struct RecordPrinter: Sendable {
    let io: CommandIO
    let asJSON: Bool
    let view: RecordView

    init(io: CommandIO, format: OutputFormat) {
        self.io = io
        asJSON = format == .json
        view = RecordView(style: Styling(enabled: io.colors && !asJSON), width: TerminalSize.columns(io.environment))
    }

    func print(_ record: CaptureRecord, answering: String? = nil) {
        io.write((asJSON ? record.jsonLine : view.line(record, answering: answering)) + "\n")
    }

    /// A record as written: with `--json`, the very line the file got; `answering`: the event an
    /// ack answers.
    func print(_ line: CaptureLine, answering: String? = nil) {
        io.write((asJSON ? line.text : view.line(line.record, answering: answering)) + "\n")
    }
}

extension SocketIOProxy {
    /// A proxy whose records go to `queue`, and which stops reading while the queue is behind.
    convenience init(configuration: ProxyConfiguration, recordingInto queue: CaptureQueue) {
        self.init(
            configuration: configuration,
            readGate: { resume in queue.admit(orResume: resume) },
            sink: { body, conn, time in queue.add(body, conn: conn, time: time) }
        )
    }
}
