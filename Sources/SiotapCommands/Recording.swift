import SiotapInspector
import Synchronization
import TrafficCapture
import TrafficDiagnosis

/// Where a command's records go, the same way for `proxy`, `demo`, `import` and `sniff`: numbered
/// and stamped once (``CaptureQueue``), each line made once and the same bytes written to the
/// file, shown in the live view (`--json`) and kept for the inspector.
final class Recording: Sendable {
    let queue: CaptureQueue
    /// The records for the inspector, when `--ui` serves one.
    let feed: InspectorFeed?
    private let writer: CaptureWriter?
    private let tally = Tally()
    /// What the records show, worked out as they are written (see ``Diagnoser``).
    private let diagnosing = Diagnosing()
    private let stampedNow: Bool

    /// The first write that failed, and the packets and tokens recorded (for the summaries).
    private final class Tally: Sendable {
        let failure = Mutex<CaptureWriteError?>(nil)
        let counts = Mutex((packets: 0, tokens: 0, infos: 0))
    }

    /// The diagnoser, fed on the writer's thread in `seq` order; its findings go back into the
    /// queue (set once the queue exists), and are kept for the summary.
    private final class Diagnosing: Sendable {
        let diagnoser = Mutex(Diagnoser())
        let queue = Mutex<CaptureQueue?>(nil)
        let found = Mutex<[CaptureRecord]>([])
        static let keptForSummary = 1000

        func take(_ record: CaptureRecord, stampedNow: Bool) {
            if record.kind == .diagnosis {
                found.withLock { found in if found.count < Self.keptForSummary { found.append(record) } }
                return
            }
            let diagnoses = diagnoser.withLock { $0.take(record) }
            guard !diagnoses.isEmpty, let queue = queue.withLock({ $0 }) else { return }
            // Live, a diagnosis is stamped now (records stamped since must not come before it in
            // time); an import's keeps the capture's time of what showed it.
            add(diagnoses, to: queue, stampedNow: stampedNow)
        }

        /// The capture ends: what still waited is decided.
        func finish(stampedNow: Bool) {
            let diagnoses = diagnoser.withLock { $0.finish() }
            guard !diagnoses.isEmpty, let queue = queue.withLock({ $0 }) else { return }
            add(diagnoses, to: queue, stampedNow: stampedNow)
        }

        private func add(_ diagnoses: [Diagnoser.Diagnosis], to queue: CaptureQueue, stampedNow: Bool) {
            for diagnosis in diagnoses { queue.add(.diagnosis(diagnosis.record), conn: diagnosis.conn, time: stampedNow ? nil : diagnosis.time) }
        }
    }

    /// - Parameters:
    ///   - shows: whether a record goes to the live view (`--quiet`, `--filter`), given the event an
    ///     ack answers.
    ///   - highWater: records waiting above which readers pause (see ``CaptureQueue``); an import
    ///     keeps it small, so that a file's records are never all in memory.
    ///   - draining: who writes: the queue's thread (live traffic) or the producer (an import).
    init(
        command: String, record: String?, io: CommandIO, format: OutputFormat, inspector: InspectorOptions, shows: @escaping @Sendable (CaptureRecord, _ answering: String?) -> Bool,
        highWater: Int = CaptureQueue.defaultHighWater, highWaterBytes: Int = CaptureQueue.defaultHighWaterBytes, draining: CaptureQueue.Draining = .background
    ) throws {
        do { writer = try record.map { try CaptureWriter(path: $0) } } catch { throw CommandFailure("\(error)") }
        let feed = inspector.address.map { _ in InspectorFeed(source: record ?? "siotap \(command)", capacity: inspector.buffer) }
        self.feed = feed
        let printer = RecordPrinter(io: io, format: format)
        let tally = self.tally
        let diagnosing = self.diagnosing
        let stampedNow = draining == .background
        self.stampedNow = stampedNow
        let ackEvents = AckEvents()
        queue = CaptureQueue(
            writer: writer, highWater: highWater, highWaterBytes: highWaterBytes, draining: draining,
            failed: { error in
                tally.failure.withLock { $0 = error }
                io.writeError("siotap \(command): the capture cannot be written (\(error))\(command == "proxy" ? "; traffic still flows" : "")\n")
            },
            delivered: { line in
                switch line.record.body {
                case .packet: tally.counts.withLock { $0.packets += 1 }
                case .jwt: tally.counts.withLock { $0.tokens += 1 }
                case .info: tally.counts.withLock { $0.infos += 1 }
                default: break
                }
                diagnosing.take(line.record, stampedNow: stampedNow)
                feed?.add(line.record, line: line.text)
                let answering = ackEvents.take(line.record)
                if shows(line.record, answering) { printer.print(line, answering: answering) }
            }
        )
        diagnosing.queue.withLock { $0 = queue }
    }

    /// The diagnosis records written so far (the first thousand), for a summary.
    var diagnoses: [CaptureRecord] { diagnosing.found.withLock { $0 } }

    /// The first write that failed, if one did.
    var writeFailure: CaptureWriteError? { tally.failure.withLock { $0 } }

    var packets: Int { tally.counts.withLock { $0.packets } }
    var tokens: Int { tally.counts.withLock { $0.tokens } }
    /// `info` records written (forward mode's failed tunnels).
    var infos: Int { tally.counts.withLock { $0.infos } }

    /// Everything added is written and shown; the file is closed.
    func finish() {
        // Written first, so that what the last records show is written too (a closed queue takes nothing).
        queue.flush()
        diagnosing.finish(stampedNow: stampedNow)
        queue.close()
        // The queue's delivery holds the diagnoser, which held the queue.
        diagnosing.queue.withLock { $0 = nil }
        writer?.close()
    }
}
