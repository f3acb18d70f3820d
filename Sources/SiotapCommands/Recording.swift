import SiotapInspector
import Synchronization
import TrafficCapture

/// Where a command's records go, the same way for `proxy`, `demo`, `import` and `sniff`: numbered
/// and stamped once (``CaptureQueue``), each line made once and the same bytes written to the
/// file, shown in the live view (`--json`) and kept for the inspector.
final class Recording: Sendable {
    let queue: CaptureQueue
    /// The records for the inspector, when `--ui` serves one.
    let feed: InspectorFeed?
    private let writer: CaptureWriter?
    private let tally = Tally()

    /// The first write that failed, and the packets and tokens recorded (for the summaries).
    private final class Tally: Sendable {
        let failure = Mutex<CaptureWriteError?>(nil)
        let counts = Mutex((packets: 0, tokens: 0, infos: 0))
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
                feed?.add(line.record, line: line.text)
                let answering = ackEvents.take(line.record)
                if shows(line.record, answering) { printer.print(line, answering: answering) }
            }
        )
    }

    /// The first write that failed, if one did.
    var writeFailure: CaptureWriteError? { tally.failure.withLock { $0 } }

    var packets: Int { tally.counts.withLock { $0.packets } }
    var tokens: Int { tally.counts.withLock { $0.tokens } }
    /// `info` records written (forward mode's failed tunnels).
    var infos: Int { tally.counts.withLock { $0.infos } }

    /// Everything added is written and shown; the file is closed.
    func finish() {
        queue.close()
        writer?.close()
    }
}
