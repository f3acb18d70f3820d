#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Writes capture records as JSONL, one `write(2)` per record or batch of records, so that a
/// process that dies leaves whole lines only. (A reader tailing the file can still see the end of
/// a large line while it is being written: ``CaptureReader`` reports a last line without its
/// newline as cut short, and a tailing reader should wait for the newline.)
///
/// Numbers records in file order (`seq`) and stamps those without a time. Safe to share between
/// tasks: writes are serialised by a lock.
public final class CaptureWriter: Sendable {
    private struct State {
        var descriptor: Int32
        var nextSeq = 1
        /// A batch's bytes, kept between batches: a fresh buffer each time was mapped and faulted
        /// in anew.
        var buffer: [UInt8] = []
    }

    private let state: Mutex<State>
    public let path: String

    /// Opens (creating or truncating) `path`; `"-"` writes to standard output.
    public init(path: String, append: Bool = false) throws(CaptureWriteError) {
        self.path = path
        let descriptor: Int32
        if path == "-" {
            descriptor = dup(STDOUT_FILENO)
        } else {
            descriptor = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0o644)
        }
        guard descriptor >= 0 else {
            throw CaptureWriteError(.cannotOpen, path: path, detail: String(cString: strerror(errno)))
        }
        state = Mutex(State(descriptor: descriptor))
    }

    /// Writes a record, giving it the next `seq` and, if it has none, the current time.
    /// - Returns: the record as written.
    @discardableResult
    public func write(_ record: CaptureRecord) throws(CaptureWriteError) -> CaptureRecord {
        try state.withLock { state throws(CaptureWriteError) in
            var record = record
            record.seq = state.nextSeq
            if record.ts.isEmpty { record.ts = CaptureClock.now() }
            var line = record.jsonBytes
            line.append(UInt8(ascii: "\n"))
            try Self.writeAll(line, to: state.descriptor, path: path)
            state.nextSeq += 1
            return record
        }
    }

    /// Writes records in one `write(2)`: whole lines, numbered in order, stamped if they have no
    /// time; `records` become the records as written.
    public func write(batch records: inout [CaptureRecord]) throws(CaptureWriteError) {
        try state.withLock { state throws(CaptureWriteError) in
            let now = records.contains { $0.ts.isEmpty } ? CaptureClock.now() : ""
            for index in records.indices {
                records[index].seq = state.nextSeq + index
                if records[index].ts.isEmpty { records[index].ts = now }
            }
            try writeLines(records, state: &state)
            state.nextSeq += records.count
        }
    }

    /// Writes records numbered and stamped already (by a ``CaptureQueue``, as they were added), in
    /// one `write(2)`; the writer's own numbering is not used.
    public func write(numbered records: [CaptureRecord]) throws(CaptureWriteError) {
        try state.withLock { state throws(CaptureWriteError) in try writeLines(records, state: &state) }
    }

    /// The records' lines in the buffer kept between batches, then one `write(2)`; under the lock.
    /// Whole lines go out in one `write(2)` up to this many bytes; a batch past it in several,
    /// each of whole lines, so that large records are not all held in one buffer.
    static let largestWrite = 1 << 20

    private func writeLines(_ records: [CaptureRecord], state: inout State) throws(CaptureWriteError) {
        var bytes: [UInt8] = []
        swap(&bytes, &state.buffer)
        bytes.removeAll(keepingCapacity: true)
        defer {
            // A buffer that grew for one large record is not kept for every batch after it.
            if bytes.capacity > 4 * Self.largestWrite { bytes = [] }
            swap(&bytes, &state.buffer)
        }
        for record in records {
            let size = record.approximateSize
            if size > Self.largestWrite {
                // Room for the whole line at once: growing by doubling would hold the old and the
                // new buffer together, three times the line.
                if !bytes.isEmpty {
                    try Self.writeAll(bytes, to: state.descriptor, path: path)
                    bytes.removeAll(keepingCapacity: true)
                }
                bytes.reserveCapacity(size + size / 4)
            }
            record.writeJSON(to: &bytes)
            bytes.append(UInt8(ascii: "\n"))
            if bytes.count >= Self.largestWrite {
                try Self.writeAll(bytes, to: state.descriptor, path: path)
                bytes.removeAll(keepingCapacity: bytes.capacity <= 4 * Self.largestWrite)
            }
        }
        if !bytes.isEmpty { try Self.writeAll(bytes, to: state.descriptor, path: path) }
    }

    /// Writes a body with the current time and the given connection.
    @discardableResult
    public func write(_ body: CaptureRecord.Body, conn: String? = nil) throws(CaptureWriteError) -> CaptureRecord {
        try write(CaptureRecord(conn: conn, body))
    }

    /// Flushes to the disk and closes; later writes fail.
    public func close() {
        state.withLock { state in
            guard state.descriptor >= 0 else { return }
            _ = fsync(state.descriptor)
            _ = Glibc.close(state.descriptor)
            state.descriptor = -1
        }
    }

    deinit { close() }

    private static func writeAll(_ line: [UInt8], to descriptor: Int32, path: String) throws(CaptureWriteError) {
        guard descriptor >= 0 else { throw CaptureWriteError(.closed, path: path) }
        let failure: CaptureWriteError? = line.withUnsafeBufferPointer { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return CaptureWriteError(.cannotWrite, path: path, detail: String(cString: strerror(errno)))
                }
                offset += written
            }
            return nil
        }
        if let failure { throw failure }
    }
}

/// The capture format's clock: RFC 3339, UTC, microseconds.
public enum CaptureClock {
    public static func now() -> String { RFC3339.format(secondsSince1970: secondsSince1970()) }

    public static func secondsSince1970() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}

/// Why a capture could not be written (reading has ``CaptureReadError``).
public struct CaptureWriteError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// The file could not be created or opened.
        case cannotOpen = "cannot_open"
        /// A write failed: the disk is full, the file system read-only, the descriptor gone.
        case cannotWrite = "cannot_write"
        /// The writer was closed before the write.
        case closed
    }

    public let code: Code
    public let path: String
    /// The system's reason (`strerror`), when there is one.
    public let detail: String

    public init(_ code: Code, path: String, detail: String = "") {
        self.code = code
        self.path = path
        self.detail = detail
    }

    public var description: String {
        switch code {
        case .cannotOpen: "cannot open \(path): \(detail)"
        case .cannotWrite: "cannot write \(path): \(detail)"
        case .closed: "\(path) is closed"
        }
    }
}
