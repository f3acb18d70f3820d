import Synchronization

/// Takes records from any thread and writes them from one, in the order they came: numbered,
/// stamped with the time they were added, and many lines to a `write(2)` under load. The proxy's
/// event loops add a record in a lock and an append, and never wait for the disk or a terminal.
///
/// ``flush()`` returns once everything added before it is written. While traffic flows, a record
/// is written within about 5 ms (records gather between the writer's batches). Adding never
/// waits: when more than `highWater` records, or `highWaterBytes` bytes of them, are waiting (a
/// disk or a terminal slower than the traffic), ``admit(orResume:)`` says no, and the proxy stops
/// reading from its sockets until the writer has caught up to half of that. Nothing is dropped, and no event loop waits on the writer.
public final class CaptureQueue: Sendable {
    /// Who writes what is added: the queue's own thread (live traffic, whose producers, event
    /// loops, must never wait), or the producer when it calls ``flush()`` or ``close()`` (a file's
    /// import, which has nothing better to do than write, in batches, on its own thread).
    public typealias Draining = BatchDraining

    public typealias Delivery = @Sendable (CaptureLine) -> Void

    public static let defaultHighWater = 50_000
    /// Bytes waiting (about: ``CaptureRecord/Body/approximateSize``) above which readers pause
    /// too: 50,000 records of 64 MiB messages would be gigabytes.
    public static let defaultHighWaterBytes = 256 << 20

    fileprivate struct Entry: Sendable {
        var seq: Int
        var body: CaptureRecord.Body
        var conn: String?
        var time: Double
        var size: Int
    }

    /// The first write that failed is reported; the others are not.
    private final class FailureReport: Sendable {
        let reported = Atomic<Bool>(false)
    }

    private let batches: BatchingQueue<Entry>
    private let draining: Draining

    /// - Parameters:
    ///   - writer: the file, or `nil` to only number and deliver.
    ///   - failed: told once, the first time the file cannot be written (records are still delivered).
    ///   - delivered: each record as written, in order, on the writer thread (the live view).
    ///   - highWater: records waiting above which ``admit(orResume:)`` pauses readers.
    ///   - highWaterBytes: bytes waiting above which it pauses them too.
    ///   - draining: who writes (see ``Draining``).
    public init(
        writer: CaptureWriter?, highWater: Int = defaultHighWater, highWaterBytes: Int = defaultHighWaterBytes, draining: Draining = .background,
        failed: @escaping @Sendable (CaptureWriteError) -> Void = { _ in }, delivered: @escaping Delivery = { _ in }
    ) {
        self.draining = draining
        let report = FailureReport()
        batches = BatchingQueue(label: "siotap.capture", highWater: highWater, highWaterBytes: highWaterBytes, draining: draining) { entries in
            Self.write(entries) { chunk, lines in
                do throws(CaptureWriteError) {
                    try writer?.write(lines: chunk)
                } catch {
                    if !report.reported.exchange(true, ordering: .relaxed) { failed(error) }
                }
                for (record, range) in lines { delivered(CaptureLine(record: record, bytes: chunk[range])) }
            }
        }
    }

    /// Adds a record; returns the `seq` it will be written with (0 once the queue is closed).
    /// `time` (seconds since 1970): when it happened, if not now (an imported capture's times, the
    /// proxy's observed frames). Live (``Draining/background``), a record is never stamped before
    /// the one written ahead of it: producers that stamp their own times hand them over in
    /// their own order.
    @discardableResult
    public func add(_ body: CaptureRecord.Body, conn: String?, time: Double? = nil) -> Int {
        let size = body.approximateSize
        let live = draining == .background
        // Numbered and stamped under the queue's lock, so seqs and times never go back in file order.
        return batches.add(bytes: size) { order in
            var stamp = time ?? CaptureClock.secondsSince1970()
            if live {
                stamp = max(stamp, order.lastTime)
                order.lastTime = stamp
            }
            return Entry(seq: order.added + 1, body: body, conn: conn, time: stamp, size: size)
        } ?? 0
    }

    /// Whole lines go out in one `write(2)` up to this many bytes; a batch past it in several.
    static let largestWrite = 1 << 20

    /// Makes each record's line once: the same bytes go to the file and to `delivered` (the live
    /// view, the inspector). Whole lines go out a chunk at a time, so that a batch of large
    /// records is never all held twice.
    private static func write(_ entries: [Entry], deliver: ([UInt8], [(record: CaptureRecord, range: Range<Int>)]) -> Void) {
        var chunk: [UInt8] = []
        var lines: [(record: CaptureRecord, range: Range<Int>)] = []
        for entry in entries {
            let record = CaptureRecord(seq: entry.seq, ts: RFC3339.format(secondsSince1970: entry.time), conn: entry.conn, entry.body)
            if entry.size > largestWrite { chunk.reserveCapacity(chunk.count + entry.size + entry.size / 4) }
            let start = chunk.count
            record.writeJSON(to: &chunk)
            lines.append((record, start..<chunk.count))
            chunk.append(UInt8(ascii: "\n"))
            if chunk.count >= largestWrite {
                deliver(chunk, lines)
                chunk = []
                lines.removeAll(keepingCapacity: true)
            }
        }
        if !chunk.isEmpty { deliver(chunk, lines) }
    }

    /// Records added so far.
    public var added: Int { batches.added }

    /// Records, and their bytes (about), not yet written.
    public var waiting: (records: Int, bytes: Int) {
        let waiting = batches.waiting
        return (waiting.items, waiting.bytes)
    }

    /// Whether a reader may go on reading: true, or false and `resume` is called (on the writer's
    /// thread) once the backlog is down to half the high water.
    public func admit(orResume resume: @escaping @Sendable () -> Void) -> Bool {
        batches.admit(orResume: resume)
    }

    /// Waits until every record added so far is written and delivered.
    public func flush() {
        batches.flush()
    }

    /// Writes what is queued; records added later are dropped (the program is stopping).
    public func close() {
        batches.close()
    }
}

/// A record as written: its JSON line, made once, for whoever shows it.
public struct CaptureLine: Sendable {
    public let record: CaptureRecord
    /// The line's bytes, without its newline.
    public let bytes: ArraySlice<UInt8>

    public init(record: CaptureRecord, bytes: ArraySlice<UInt8>) {
        self.record = record
        self.bytes = bytes
    }

    public var text: String { String(decoding: bytes, as: UTF8.self) }
}
