import ArgumentParser

/// How a command prints records: readable lines, or capture records as JSON lines.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case text, json
}

/// `--format text|json` and `--json` (the same as `--format json`). Without either: text on a
/// terminal, JSON lines when the output goes to a pipe or a file.
struct OutputFormatOptions: ParsableArguments {
    @Option(help: "text: a readable line per record; json: capture records as JSON lines. Default: text on a terminal, json when piped or redirected.")
    var format: OutputFormat?

    @Flag(help: "The same as --format json.")
    var json = false

    func validate() throws {
        if json, format == .text { throw ValidationError("--json and --format text disagree") }
    }

    /// The format in effect for `io`.
    func resolved(_ io: CommandIO) -> OutputFormat {
        json ? .json : format ?? (io.terminal ? .text : .json)
    }
}
