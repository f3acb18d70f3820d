import ArgumentParser
import TrafficCapture
import TrafficDiagnosis

struct DiagnoseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diagnose",
        abstract: "Say what went wrong in captures: the failures Socket.IO teams meet, named from the traffic, each with its fix.",
        discussion: """
            Reads each capture (any capture format v1 file: from siotap proxy, import, sniff or \
            demo, old ones included) and works out, from its records alone, the failures in \
            docs/diagnoses.md: a load balancer without sticky sessions ("Session ID unknown"), a \
            refused or header-stripped WebSocket upgrade, a client and server of different \
            Engine.IO versions, an intermediary's idle timeout shorter than the heartbeat, a \
            missed pong, a message over maxHttpBufferSize, a CORS origin refused, a token expired, \
            not yet valid, forged or missing, an unknown namespace, unanswered acks, a client \
            reconnecting in a loop. Each says which conn, what was seen, the records that show it \
            (their seq), and the socket.io documentation on the fix. siotap proxy, import and \
            sniff write the same diagnosis records into their captures as they go; this works \
            them out afresh, ignoring those.

            Output: a readable report, or with --json the diagnosis records as JSON lines, as a \
            capture holds them (numbered after the capture's last record, so they can be appended \
            to it).

            Exit codes: 0 no error-level diagnosis (warnings may be shown); 1 at least one; 2 a \
            file that cannot be read.

            Examples:
              siotap diagnose session.jsonl
              siotap diagnose captures/*.jsonl --json | jq -r '.code'
              siotap import prod.pcap --record prod.jsonl && siotap diagnose prod.jsonl
            """
    )

    @Argument(help: "Capture files (JSONL, capture format v1).")
    var captures: [String]

    @Flag(help: "The diagnosis records as JSON lines.")
    var json = false

    func validate() throws {
        guard !captures.isEmpty else { throw ValidationError("give at least one capture file") }
    }

    func run() throws {
        let io = CommandIO.current
        let view = RecordView(style: Styling(enabled: io.colors && !json), width: TerminalSize.columns(io.environment))
        var errors = 0
        for path in captures {
            // Each diagnosis is printed as it is found, so memory does not grow with the file; as
            // JSON they are numbered after the capture's last record, read first.
            var nextSeq = 1
            if json {
                let iterator = try Self.open(path)
                while let entry = iterator.next() { if case .record(let record) = entry { nextSeq = max(nextSeq, record.seq + 1) } }
            }
            let iterator = try Self.open(path)
            var diagnoser = Diagnoser()
            var counts: [DiagnosisCode: (severity: DiagnosisRecord.Severity, count: Int)] = [:]
            var problems = 0
            func show(_ diagnoses: [Diagnoser.Diagnosis]) {
                for diagnosis in diagnoses {
                    let record = CaptureRecord(seq: nextSeq, ts: RFC3339.format(secondsSince1970: diagnosis.time), conn: diagnosis.conn, .diagnosis(diagnosis.record))
                    nextSeq += 1
                    counts[diagnosis.record.code, default: (diagnosis.record.severity, 0)].count += 1
                    if diagnosis.record.severity == .error { errors += 1 }
                    if json {
                        io.writeBytes(record.jsonBytes + [UInt8(ascii: "\n")])
                    } else {
                        io.write(view.line(record) + "\n")
                    }
                }
            }
            while let entry = iterator.next() {
                switch entry {
                case .record(let record): show(diagnoser.take(record))
                case .problem(let problem):
                    problems += 1
                    if problems <= 20 { io.writeError("siotap diagnose: \(path): \(problem)\n") }
                }
            }
            show(diagnoser.finish())
            if !json {
                io.write(counts.isEmpty ? "\(path): nothing to diagnose\n" : "\(path): \(Self.summary(counts))\n")
            }
        }
        if errors > 0 { throw ExitCode(SiotapCLI.Exit.checkFailed) }
    }

    /// `2 diagnoses: sticky.session_unknown (error) ×2`: counts by code, errors first.
    static func summary(_ counts: [DiagnosisCode: (severity: DiagnosisRecord.Severity, count: Int)]) -> String {
        let total = counts.values.reduce(0) { $0 + $1.count }
        let ordered = counts.sorted { $0.value.severity != $1.value.severity ? $0.value.severity > $1.value.severity : $0.key.rawValue < $1.key.rawValue }
        let parts = ordered.map { code, value in "\(code) (\(value.severity.rawValue))" + (value.count > 1 ? " ×\(value.count)" : "") }
        return "\(total) \(total == 1 ? "diagnosis" : "diagnoses"): " + parts.joined(separator: ", ")
    }

    static func summary(_ diagnoses: [DiagnosisRecord]) -> String {
        var counts: [DiagnosisCode: (severity: DiagnosisRecord.Severity, count: Int)] = [:]
        for diagnosis in diagnoses { counts[diagnosis.code, default: (diagnosis.severity, 0)].count += 1 }
        return summary(counts)
    }

    private static func open(_ path: String) throws -> CaptureReader.Iterator {
        let iterator = CaptureReader(path: path).makeIterator()
        if let openError = iterator.openError { throw CommandFailure(.badInput, "\(path): \(openError.detail)") }
        return iterator
    }

    /// What a command that recorded says of the diagnoses when it stops: a count by code, and each
    /// kind's first explanation.
    static func stopSummary(_ records: [CaptureRecord], command: String) -> String {
        let diagnoses = records.compactMap(\.diagnosis)
        guard !diagnoses.isEmpty else { return "" }
        var lines = ["siotap \(command): \(summary(diagnoses))"]
        var shown: Set<DiagnosisCode> = []
        for record in records {
            guard let diagnosis = record.diagnosis, shown.insert(diagnosis.code).inserted else { continue }
            lines.append("  \(record.conn.map { "[\($0)] " } ?? "")\(diagnosis.code): \(diagnosis.message)")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension CaptureRecord {
    var diagnosis: DiagnosisRecord? {
        if case .diagnosis(let diagnosis) = body { diagnosis } else { nil }
    }
}
