import Dispatch
import Synchronization
#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#endif

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
    /// Who writes what is added.
    public enum Draining: Sendable {
        /// The queue's own thread, records gathering between batches: live traffic, whose
        /// producers (event loops) must never wait.
        case background
        /// The producer, when it calls ``flush()`` or ``close()``: a file's import, which has
        /// nothing better to do than write, in batches, on its own thread.
        case onFlush
    }

    public typealias Delivery = @Sendable (CaptureLine) -> Void

    public static let defaultHighWater = 50_000
    /// Bytes waiting (about: ``CaptureRecord/Body/approximateSize``) above which readers pause
    /// too: 50,000 records of 64 MiB messages would be gigabytes.
    public static let defaultHighWaterBytes = 256 << 20

    private struct Entry: Sendable {
        var seq: Int
        var body: CaptureRecord.Body
        var conn: String?
        var time: Double
        var size: Int
    }

    private struct State {
        var pending: [Entry] = []
        var pendingBytes = 0
        /// Taken by the writer, not yet written and delivered.
        var writing = 0
        var writingBytes = 0
        /// Readers paused until the backlog is down to half the high water.
        var paused: [@Sendable () -> Void] = []
        var scheduled = false
        /// Records added so far: the last one's `seq`. The queue numbers records, not the writer,
        /// so that adding can tell the `seq` (a fault record names its packet's).
        var added = 0
        var reportedFailure = false
        var closed = false
        /// The last time stamped, live: times never go back in file order.
        var lastTime = 0.0
    }

    private let state = Mutex(State())
    /// Set while the backlog is past the high water: ``admit(orResume:)`` is asked on every socket
    /// read, and reads this without the lock.
    private let behind = Atomic<Bool>(false)
    private let writer: CaptureWriter?
    private let delivered: Delivery
    private let failed: @Sendable (CaptureWriteError) -> Void
    private let thread = DispatchQueue(label: "siotap.capture")
    private let highWater: Int
    private let highWaterBytes: Int
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
        self.writer = writer
        self.draining = draining
        self.highWater = max(1, highWater)
        self.highWaterBytes = max(1, highWaterBytes)
        self.failed = failed
        self.delivered = delivered
    }

    /// Adds a record; returns the `seq` it will be written with (0 once the queue is closed).
    /// `time` (seconds since 1970): when it happened, if not now (an imported capture's times, the
    /// proxy's observed frames). Live (``Draining/background``), a record is never stamped before
    /// the one written ahead of it: producers that stamp their own times hand them over in
    /// their own order.
    @discardableResult
    public func add(_ body: CaptureRecord.Body, conn: String?, time: Double? = nil) -> Int {
        let (schedule, seq) = state.withLock { state -> (Bool, Int) in
            guard !state.closed else { return (false, 0) }
            state.added += 1
            // Stamped under the lock, so times never go back in file order.
            var stamp = time ?? CaptureClock.secondsSince1970()
            if draining == .background {
                stamp = max(stamp, state.lastTime)
                state.lastTime = stamp
            }
            let size = body.approximateSize
            state.pending.append(Entry(seq: state.added, body: body, conn: conn, time: stamp, size: size))
            state.pendingBytes += size
            if isBehind(state) { behind.store(true, ordering: .relaxed) }
            guard draining == .background else { return (false, state.added) }
            defer { state.scheduled = true }
            return (!state.scheduled, state.added)
        }
        if schedule { thread.async { self.drain() } }
        return seq
    }

    /// Whole lines go out in one `write(2)` up to this many bytes; a batch past it in several.
    static let largestWrite = 1 << 20

    /// Writes a chunk of whole lines, then hands each record with its line on.
    private func deliver(_ chunk: [UInt8], _ lines: [(record: CaptureRecord, range: Range<Int>)]) {
        do {
            try writer?.write(lines: chunk)
        } catch {
            let first = state.withLock { state in
                defer { state.reportedFailure = true }
                return !state.reportedFailure
            }
            if first { failed(error) }
        }
        for (record, range) in lines { delivered(CaptureLine(record: record, bytes: chunk[range])) }
    }

    /// How long records gather between two batches while traffic flows: one `write(2)` and no
    /// wake-up of the writer for all of them, rather than a wake-up per event loop tick (measured:
    /// the wake-ups cost more CPU than the writing). Times are stamped when a record is added.
    /// 5 ms rather than 1: about 0.8 µs less of the relay's 28 µs per round trip, in two A/B runs
    /// of six rounds; a line reaches the file and the live view at most 5 ms later, which no one
    /// watching can tell.
    static let gatheringMicroseconds: UInt32 = 5000

    /// Records added so far.
    public var added: Int { state.withLock { $0.added } }

    /// Records, and their bytes (about), not yet written.
    public var waiting: (records: Int, bytes: Int) { state.withLock { ($0.pending.count + $0.writing, $0.pendingBytes + $0.writingBytes) } }

    /// Whether a reader may go on reading: true, or false and `resume` is called (on the writer's
    /// thread) once the backlog is down to half the high water.
    public func admit(orResume resume: @escaping @Sendable () -> Void) -> Bool {
        guard behind.load(ordering: .relaxed) else { return true }
        return state.withLock { state in
            guard !state.closed, isBehind(state) else { return true }
            state.paused.append(resume)
            return false
        }
    }

    private func isBehind(_ state: State) -> Bool {
        state.pending.count + state.writing > highWater || state.pendingBytes + state.writingBytes > highWaterBytes
    }

    /// Waits until every record added so far is written and delivered.
    public func flush() {
        thread.sync { while drainOnce() {} }
    }

    /// Writes what is queued; records added later are dropped (the program is stopping).
    public func close() {
        let paused = state.withLock { state in
            state.closed = true
            defer { state.paused = [] }
            return state.paused
        }
        for resume in paused { resume() }
        flush()
    }

    /// Writes until nothing is waiting; between batches, unless the writer is behind, what comes
    /// next gathers for a while. The writer's own queue, so sleeping holds up nobody.
    private func drain() {
        while drainOnce() {
            if !behind.load(ordering: .relaxed) { usleep(Self.gatheringMicroseconds) }
        }
    }

    /// Writes and delivers the records waiting, if any; `false` when there were none (the writer
    /// is then unscheduled: the next record schedules it).
    private func drainOnce() -> Bool {
        let entries: [Entry] = state.withLock { state in
            let taken = state.pending
            state.pending = []
            state.writing = taken.count
            state.writingBytes = state.pendingBytes
            state.pendingBytes = 0
            if taken.isEmpty { state.scheduled = false }
            return taken
        }
        guard !entries.isEmpty else { return false }
        // Each record's line is made once: the same bytes go to the file and to `delivered` (the
        // live view, the inspector). Whole lines go out a chunk at a time, so that a batch of
        // large records is never all held twice.
        var chunk: [UInt8] = []
        var lines: [(record: CaptureRecord, range: Range<Int>)] = []
        for entry in entries {
            let record = CaptureRecord(seq: entry.seq, ts: RFC3339.format(secondsSince1970: entry.time), conn: entry.conn, entry.body)
            if entry.size > Self.largestWrite { chunk.reserveCapacity(chunk.count + entry.size + entry.size / 4) }
            let start = chunk.count
            record.writeJSON(to: &chunk)
            lines.append((record, start..<chunk.count))
            chunk.append(UInt8(ascii: "\n"))
            if chunk.count >= Self.largestWrite {
                deliver(chunk, lines)
                chunk = []
                lines.removeAll(keepingCapacity: true)
            }
        }
        if !chunk.isEmpty { deliver(chunk, lines) }
        let resumed = state.withLock { state -> [@Sendable () -> Void] in
            state.writing = 0
            state.writingBytes = 0
            guard state.pending.count <= highWater / 2, state.pendingBytes <= highWaterBytes / 2 else { return [] }
            behind.store(false, ordering: .relaxed)
            defer { state.paused = [] }
            return state.paused
        }
        for resume in resumed { resume() }
        return true
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
