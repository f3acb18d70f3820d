/// Finds the elements of a HAR file's `log.entries` array in its bytes as they are read, in pieces
/// cut anywhere: each entry's bytes, whole, for ``HARImport`` to parse one at a time, so that a file
/// of any size is never held (or parsed) whole. Everything outside the entries is only stepped
/// over: its brackets and strings are followed, not kept. Pure.
public struct HAREntryScanner: Sendable {
    public struct Failed: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// An entry longer than this is refused (a browser's entries are kilobytes; a long
    /// WebSocket's messages, megabytes).
    public static let largestEntry = 256 << 20
    /// Deeper nesting is refused: a HAR nests a few levels, and a file of `[[[[…` must not grow
    /// the scanner's stack with every byte.
    public static let deepest = 512

    private enum Container: Sendable {
        case object(expectingKey: Bool, key: [UInt8])
        case array
    }

    private var stack: [Container] = []
    private var inString = false
    private var escaped = false
    private var stringIsKey = false
    /// Depth of the entries array on `stack`, while inside it.
    private var entriesDepth: Int?
    /// The bytes of the entry being read.
    private var entry: [UInt8] = []
    private var capturing = false
    public private(set) var foundEntries = false
    private var offset = 0

    public init() {}

    public mutating func feed(_ bytes: [UInt8]) throws(Failed) -> [[UInt8]] {
        var result: Result<[[UInt8]], Failed> = .success([])
        bytes.withUnsafeBytes { buffer in
            do throws(Failed) { result = .success(try feed(buffer)) } catch { result = .failure(error) }
        }
        return try result.get()
    }

    /// The entries completed by `bytes`, in file order.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) throws(Failed) -> [[UInt8]] {
        var entries: [[UInt8]] = []
        var captureStart = capturing ? 0 : -1
        for index in 0..<bytes.count {
            let byte = bytes[index]
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                } else if stringIsKey, case .object(let expecting, var key) = stack[stack.count - 1], key.count < 16 {
                    key.append(byte)
                    stack[stack.count - 1] = .object(expectingKey: expecting, key: key)
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                inString = true
                if case .object(true, _) = stack.last {
                    stringIsKey = true
                    stack[stack.count - 1] = .object(expectingKey: true, key: [])
                } else {
                    stringIsKey = false
                }
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                if stack.count == entriesDepth, !capturing {
                    capturing = true
                    captureStart = index
                }
                let opensEntries = byte == UInt8(ascii: "[") && entriesDepth == nil && !foundEntries && isAtLogEntries
                guard stack.count < Self.deepest else { throw Failed(description: "nested deeper than \(Self.deepest) levels at byte \(offset + index)") }
                stack.append(byte == UInt8(ascii: "{") ? .object(expectingKey: true, key: []) : .array)
                if opensEntries {
                    entriesDepth = stack.count
                    foundEntries = true
                }
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                guard stack.popLast() != nil else { throw Failed(description: "an unmatched \(Character(UnicodeScalar(byte))) at byte \(offset + index)") }
                if capturing, stack.count == entriesDepth {
                    entry.append(contentsOf: bytes[captureStart...index])
                    entries.append(entry)
                    entry = []
                    capturing = false
                    captureStart = -1
                } else if let depth = entriesDepth, stack.count < depth {
                    entriesDepth = nil
                }
            case UInt8(ascii: ":"):
                if case .object(_, let key) = stack.last { stack[stack.count - 1] = .object(expectingKey: false, key: key) }
            case UInt8(ascii: ","):
                if case .object(_, let key) = stack.last { stack[stack.count - 1] = .object(expectingKey: true, key: key) }
            default:
                break
            }
        }
        if capturing, captureStart >= 0 {
            entry.append(contentsOf: bytes[captureStart...])
            guard entry.count <= Self.largestEntry else {
                throw Failed(description: "an entry longer than \(Self.largestEntry >> 20) MiB at byte \(offset)")
            }
        }
        offset += bytes.count
        return entries
    }

    /// The root object's `log` key, then the log's `entries` key, with the value about to open.
    private var isAtLogEntries: Bool {
        guard stack.count == 2, case .object(false, let rootKey) = stack[0], case .object(false, let logKey) = stack[1] else { return false }
        return rootKey == Array("log".utf8) && logKey == Array("entries".utf8)
    }

    /// The file ended: it must have had its entries, and not end inside one.
    public func finish() throws(Failed) {
        guard foundEntries else { throw Failed(description: "not a HAR file: no log.entries") }
        guard !capturing, !inString else { throw Failed(description: "the file ends inside an entry") }
    }
}
