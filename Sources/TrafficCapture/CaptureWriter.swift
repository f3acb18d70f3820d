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
/// Numbers records that have no `seq` in file order and stamps those without a time (records from
/// a ``CaptureQueue`` come numbered and stamped). Safe to share between tasks: writes are
/// serialised by a lock.
public final class CaptureWriter: Sendable {
    private struct State {
        var descriptor: Int32
        var nextSeq = 1
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

    /// Writes a record, with the next `seq` if it has none (0), and the current time if it has
    /// none (a record read from a capture keeps both: `siotap redact`).
    /// - Returns: the record as written.
    @discardableResult
    public func write(_ record: CaptureRecord) throws(CaptureWriteError) -> CaptureRecord {
        try state.withLock { state throws(CaptureWriteError) in
            var record = record
            if record.seq == 0 { record.seq = state.nextSeq }
            if record.ts.isEmpty { record.ts = CaptureClock.now() }
            var line = record.jsonBytes
            line.append(UInt8(ascii: "\n"))
            try Self.writeAll(line, to: state.descriptor, path: path)
            state.nextSeq = record.seq + 1
            return record
        }
    }

    /// Writes whole lines (made by a ``CaptureQueue``, which numbers and stamps the records) in
    /// one `write(2)`.
    public func write(lines: [UInt8]) throws(CaptureWriteError) {
        try state.withLock { state throws(CaptureWriteError) in try Self.writeAll(lines, to: state.descriptor, path: path) }
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
