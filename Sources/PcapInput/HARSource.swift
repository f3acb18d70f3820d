#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import TrafficImport

/// A HAR file's events in time order, read as a stream: whatever its size, neither the file nor
/// its events are held in memory. The entries are read one at a time (``HAREntryScanner``), their
/// events written to a temporary file (already unlinked) with a small index in memory (24 bytes
/// an event), the index sorted by time, and the events read back in that order.
public final class HARSource {
    public struct Failure: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    private struct Spilled {
        var time: Double
        var offset: Int64
        var order: UInt32
        var length: UInt32
    }

    private let spill: Int32
    private var index: [Spilled] = []
    private var next = 0
    /// Entries that had a request.
    public private(set) var entries = 0

    /// Reads `path` through; `progress` is told how many bytes are read, now and then.
    public init(path: String, progress: (Int) -> Void = { _ in }) throws(Failure) {
        let file = open(path, O_RDONLY | O_CLOEXEC)
        guard file >= 0 else { throw Failure(message: "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(file) }
        spill = try Self.temporaryFile()
        do {
            try read(file, progress: progress)
        } catch {
            close(spill)
            throw error
        }
        // In time order; of one time, in the order the file had them.
        index.sort { ($0.time, $0.order) < ($1.time, $1.order) }
    }

    deinit { close(spill) }

    /// The next event in time order; nil at the end.
    public func nextEvent() throws(Failure) -> (HTTPConversation.Event, SessionAssembler.Flow)? {
        guard next < index.count else { return nil }
        let spilled = index[next]
        next += 1
        var bytes = [UInt8](repeating: 0, count: Int(spilled.length))
        let count = bytes.withUnsafeMutableBytes { pread(spill, $0.baseAddress, $0.count, off_t(spilled.offset)) }
        guard count == Int(spilled.length), let event = HAREventCoding.decode(bytes) else {
            throw Failure(message: "the temporary file of the HAR's events cannot be read back")
        }
        return event
    }

    private func read(_ file: Int32, progress: (Int) -> Void) throws(Failure) {
        var scanner = HAREntryScanner()
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var pending: [UInt8] = []
        var spilledBytes: Int64 = 0
        var total = 0
        var entryNumber = 0
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(file, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw Failure(message: "cannot read the file: \(String(cString: strerror(errno)))") }
            if count == 0 { break }
            total += count
            progress(total)
            let found: [[UInt8]]
            do { found = try chunk.withUnsafeBytes { try scanner.feed(UnsafeRawBufferPointer(rebasing: $0[..<count])) } } catch {
                throw Failure(message: "\(error)")
            }
            for entry in found {
                let events: [(Double, HTTPConversation.Event, SessionAssembler.Flow)]
                do { events = try HARImport.events(ofEntry: entry, index: entryNumber) } catch { throw Failure(message: error.description) }
                entryNumber += 1
                if !events.isEmpty { entries += 1 }
                for (time, event, flow) in events {
                    let start = pending.count
                    HAREventCoding.encode(event, flow: flow, into: &pending)
                    let length = pending.count - start
                    guard index.count < Int(UInt32.max), length <= Int(UInt32.max) else { throw Failure(message: "more events than siotap takes from one HAR file") }
                    index.append(Spilled(time: time, offset: spilledBytes, order: UInt32(index.count), length: UInt32(length)))
                    spilledBytes += Int64(length)
                }
                if pending.count >= 1 << 20 {
                    try write(pending)
                    pending.removeAll(keepingCapacity: true)
                }
            }
        }
        do { try scanner.finish() } catch { throw Failure(message: error.description) }
        try write(pending)
    }

    private func write(_ bytes: [UInt8]) throws(Failure) {
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { Glibc.write(spill, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { throw Failure(message: "cannot write the HAR's events to a temporary file: \(String(cString: strerror(errno)))") }
            written += count
        }
    }

    /// A file in `$TMPDIR` (else /tmp), unlinked at once: it goes when it is closed.
    private static func temporaryFile() throws(Failure) -> Int32 {
        let directory = getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array((directory + "/siotap-har-XXXXXX").utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else { throw Failure(message: "cannot make a temporary file in \(directory): \(String(cString: strerror(errno)))") }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        return descriptor
    }
}
