#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a capture file line by line, without loading it whole.
///
/// Yields every line as a record or a problem: a bad line in the middle is reported and reading
/// goes on; a last line without a newline that does not parse (a writer cut off mid-line) is
/// reported as ``CaptureReadError/Code/truncatedLastLine``, and everything before it is kept.
/// Blank lines are skipped. A line longer than ``largestLine`` is reported as
/// ``CaptureReadError/Code/lineTooLong`` as soon as that is known, and skipped without being held.
/// Reading is linear in the file's size, however long its lines.
public struct CaptureReader: Sequence {
    /// The largest message siotap records (`--max-message-size`'s default).
    public static let largestMessage = 64 << 20
    /// The longest line siotap writes for such a message: its text escaped (`\u0001` is six
    /// bytes for one), binary in base64 twice (attachments and args), and the record's fields.
    public static let largestLine = 6 * largestMessage + (1 << 20)

    public enum Entry: Sendable, Hashable {
        case record(CaptureRecord)
        case problem(CaptureReadError)
    }

    private enum Source { case file(String), bytes([UInt8]) }
    private let source: Source

    private let maxLine: Int

    public init(path: String, maxLine: Int = CaptureReader.largestLine) {
        source = .file(path)
        self.maxLine = maxLine
    }

    /// Reads a file that is still being written (`tail -f`): ``Iterator/next()`` returns `nil`
    /// when no whole line is there yet, and a later call reads what was added since.
    public static func following(path: String, maxLine: Int = CaptureReader.largestLine) -> Iterator {
        Iterator(path: path, following: true, maxLine: maxLine)
    }

    /// Reads a capture held in memory, with the same rules as a file.
    public init(bytes: [UInt8], maxLine: Int = CaptureReader.largestLine) {
        source = .bytes(bytes)
        self.maxLine = maxLine
    }

    /// Reads the whole file: the records, and the problems met on the way.
    public static func readAll(path: String) throws(CaptureReadError) -> (records: [CaptureRecord], problems: [CaptureReadError]) {
        var records: [CaptureRecord] = []
        var problems: [CaptureReadError] = []
        let iterator = CaptureReader(path: path).makeIterator()
        if let openError = iterator.openError { throw openError }
        while let entry = iterator.next() {
            switch entry {
            case .record(let record): records.append(record)
            case .problem(let problem): problems.append(problem)
            }
        }
        return (records, problems)
    }

    public func makeIterator() -> Iterator {
        switch source {
        case .file(let path): Iterator(path: path, maxLine: maxLine)
        case .bytes(let bytes): Iterator(bytes: bytes, maxLine: maxLine)
        }
    }

    public final class Iterator: IteratorProtocol {
        private var descriptor: Int32
        private var buffer: [UInt8] = []
        private var start = 0
        /// Where the search for the next newline resumes: what is before it has none.
        private var scanned = 0
        /// A line over the limit is being skipped up to its newline.
        private var skipping = false
        private var lineNumber = 0
        private var atEOF = false
        private let following: Bool
        private let maxLine: Int
        public private(set) var openError: CaptureReadError?
        /// The text of the line the last record or problem came from.
        public private(set) var lastLine = ""

        init(path: String, following: Bool = false, maxLine: Int) {
            self.following = following
            self.maxLine = maxLine
            descriptor = path == "-" ? dup(STDIN_FILENO) : open(path, O_RDONLY | O_CLOEXEC)
            if descriptor < 0 {
                openError = CaptureReadError(.io, line: 0, detail: "cannot open \(path): \(String(cString: strerror(errno)))")
                atEOF = true
            }
        }

        init(bytes: [UInt8], maxLine: Int) {
            following = false
            self.maxLine = maxLine
            descriptor = -1
            buffer = bytes
            atEOF = true
        }

        deinit { if descriptor >= 0 { _ = close(descriptor) } }

        public func next() -> Entry? {
            if let openError {
                self.openError = nil
                return .problem(openError)
            }
            while true {
                if let newline = buffer[Swift.max(start, scanned)...].firstIndex(of: UInt8(ascii: "\n")) {
                    let line = buffer[start..<newline]
                    start = newline + 1
                    scanned = start
                    if skipping {
                        skipping = false
                        continue
                    }
                    lineNumber += 1
                    if line.count > maxLine { return tooLong() }
                    if let entry = parse(line, complete: true) { return entry }
                    continue
                }
                scanned = buffer.count
                if skipping {
                    // What is there of the long line goes; its newline ends the skipping.
                    start = buffer.count
                } else if buffer.count - start > maxLine {
                    start = buffer.count
                    scanned = start
                    skipping = true
                    lineNumber += 1
                    return tooLong()
                }
                if atEOF && following {
                    // A line without its newline yet is being written: it waits for the next call.
                    atEOF = false
                    return nil
                }
                if atEOF {
                    guard start < buffer.count, !skipping else { return nil }
                    let line = buffer[start...]
                    start = buffer.count
                    lineNumber += 1
                    if let entry = parse(line, complete: false) { return entry }
                    return nil
                }
                fill()
            }
        }

        private func tooLong() -> Entry {
            lastLine = ""
            return .problem(CaptureReadError(
                .lineTooLong, line: lineNumber, detail: "longer than any record siotap writes (\(maxLine) bytes): skipped"
            ))
        }

        private func fill() {
            if start > 0 {
                buffer.removeFirst(start)
                scanned -= start
                start = 0
            }
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count <= 0 {
                atEOF = true
            } else {
                buffer.append(contentsOf: chunk[..<count])
            }
        }

        private func parse(_ line: ArraySlice<UInt8>, complete: Bool) -> Entry? {
            var line = line
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return nil }
            lastLine = String(decoding: line, as: UTF8.self)
            guard let text = String(validating: line, as: UTF8.self) else {
                return .problem(CaptureReadError(complete ? .invalidJSON : .truncatedLastLine, line: lineNumber, detail: "not UTF-8"))
            }
            do {
                return .record(try CaptureRecord(jsonLine: text))
            } catch {
                if !complete, error.code == .invalidJSON {
                    return .problem(CaptureReadError(.truncatedLastLine, line: lineNumber, detail: "the last line is cut short (\(line.count) bytes, no newline)"))
                }
                return .problem(CaptureReadError(error.code, line: lineNumber, detail: error.detail))
            }
        }
    }
}
