import ArgumentParser
import TrafficCapture

struct RedactCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redact",
        abstract: "Make a capture safe to commit: token signatures, Authorization and Cookie values, and secrets removed.",
        discussion: """
            Every JWT loses its signature (header and claims stay, so `siotap replay --jwt-secret` can \
            re-mint it), the Authorization and Cookie request headers of session records are replaced, \
            and each --secret is blanked wherever it appears. The output is a capture of the same \
            records, line for line.

            Exit codes: 0 done; 2 unreadable input or wrong arguments (lines that are not records are \
            reported and left out).

            Examples:
              siotap redact session.jsonl -o fixtures/login.jsonl
              siotap redact session.jsonl -o fixtures/login.jsonl --secret "$JWT_SECRET" --secret "$API_KEY"
            """
    )

    @Argument(help: "The capture to redact.")
    var capture: String

    @Option(name: [.short, .customLong("output")], help: "Where to write the redacted capture.")
    var output: String

    @Option(help: "A secret to blank wherever it appears; repeat for several.")
    var secret: [String] = []

    func validate() throws {
        guard output != capture else { throw ValidationError("-o must name another file than the capture") }
    }

    func run() throws {
        let io = CommandIO.current
        let redactor = CaptureRedactor(secrets: secret)
        var summary = CaptureRedactor.Summary()
        let writer: CaptureWriter
        do { writer = try CaptureWriter(path: output) } catch { throw CommandFailure("\(error)") }
        defer { writer.close() }
        var problems = 0
        let iterator = CaptureReader(path: capture).makeIterator()
        if let error = iterator.openError { throw CommandFailure(.badInput, "\(error)") }
        while let entry = iterator.next() {
            switch entry {
            case .record(let record):
                do { try writer.write(redactor.redact(record, summary: &summary)) } catch {
                    problems += 1
                    io.writeError("siotap redact: seq \(record.seq): \(error)\n")
                }
            case .problem(let problem):
                problems += 1
                io.writeError("siotap redact: \(capture): \(problem)\n")
            }
        }
        io.writeError("siotap redact: \(summary.records) records to \(output): \(summary.tokens) token signatures, \(summary.headers) headers, \(summary.secrets) secrets removed\n")
        if problems > 0 { throw ExitCode(SiotapCLI.Exit.usage) }
    }
}
