import ArgumentParser
import TrafficCapture

/// `--record`, `--quiet`, `--format` and the inspector's options: where a command's records go
/// (`proxy`, `import`, `sniff`).
struct RecordingOptions: ParsableArguments {
    @Option(help: "Write every record to this JSONL file.")
    var record: String?

    @Flag(help: "Print nothing per packet (still records).")
    var quiet = false

    @OptionGroup(title: "Output")
    var output: OutputFormatOptions

    @OptionGroup(title: "Inspector")
    var inspector: InspectorOptions

    /// The pipeline these options ask for; `shows`: which records the live view prints, unless `--quiet`.
    func recording(
        command: String, io: CommandIO, shows: @escaping @Sendable (CaptureRecord, _ answering: String?) -> Bool = { _, _ in true },
        highWater: Int = CaptureQueue.defaultHighWater, highWaterBytes: Int = CaptureQueue.defaultHighWaterBytes, draining: CaptureQueue.Draining = .background
    ) throws -> Recording {
        let quiet = self.quiet
        return try Recording(
            command: command, record: record, io: io, format: output.resolved(io), inspector: inspector, shows: { !quiet && shows($0, $1) },
            highWater: highWater, highWaterBytes: highWaterBytes, draining: draining
        )
    }
}
