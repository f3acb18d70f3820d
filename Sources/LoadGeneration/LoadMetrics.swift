#if canImport(Glibc)
import Glibc
#endif
public import Histogram
import Synchronization

/// What a load run measures, from every virtual user at once: latencies in HdrHistograms
/// (microseconds, three significant digits, up to an hour), by what they time; counts; errors by
/// kind; users started, connected and done.
public final class LoadMetrics: Sendable {
    /// What an error was.
    public enum ErrorKind: String, Sendable, CaseIterable {
        /// The session could not be opened (nothing listening, a refused handshake, an upgrade that failed).
        case connectFailed = "connect_failed"
        /// The server refused a namespace (CONNECT_ERROR): a token it did not take, a middleware.
        case refused
        /// An ack that did not come within `--timeout`.
        case ackTimeout = "ack_timeout"
        /// A server event the capture shows that did not come within `--timeout`.
        case eventTimeout = "event_timeout"
        /// The session ended before the user was done.
        case disconnected
    }

    public typealias Latencies = Histogram<UInt64>

    public struct Snapshot: Sendable {
        /// Emit to ack, by event name.
        public var acks: [String: Latencies] = [:]
        /// A client packet to the server event the capture shows it caused, by that event's name.
        public var events: [String: Latencies] = [:]
        /// Opening the session to the first namespace's CONNECT answer.
        public var connect = LoadMetrics.histogram()
        public var errors: [ErrorKind: Int] = [:]
        /// Server events that came, by name (expected or not).
        public var received: [String: Int] = [:]
        public var started = 0
        public var connected = 0
        public var peakConnected = 0
        public var completed = 0

        /// Every latency measured (acks and caused events).
        public var all: Latencies {
            var total = LoadMetrics.histogram()
            for histogram in acks.values { total.add(histogram) }
            for histogram in events.values { total.add(histogram) }
            return total
        }

        public var errorCount: Int { errors.values.reduce(0, +) }
        /// What could have failed: sessions opened, acks and events waited for.
        public var operations: Int { started + Int(all.totalCount) + errors.filter { $0.key != .connectFailed && $0.key != .refused }.values.reduce(0, +) }
    }

    private let state = Mutex(Snapshot())
    /// The latencies since the progress line last asked.
    private let recent = Mutex(LoadMetrics.histogram())

    public init() {}

    static func histogram() -> Latencies {
        Latencies(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
    }

    static func microseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        return UInt64(max(0, seconds)) * 1_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000_000)
    }

    /// Names measured apart, at most: a histogram is about 180 kB, and a capture or a server can
    /// have any number of event names. Past this, names share ``otherNames``.
    public static let largestNameCount = 256
    public static let otherNames = "(other names)"

    /// The key `name` is counted under in `table`.
    static func key<Value>(_ name: String, in table: [String: Value]) -> String {
        table[name] != nil || table.count < largestNameCount - 1 ? name : otherNames
    }

    func ack(_ name: String, _ duration: Duration) {
        let value = Self.microseconds(duration)
        state.withLock { state in
            let key = Self.key(name, in: state.acks)
            if state.acks[key] == nil { state.acks[key] = Self.histogram() }
            _ = state.acks[key]!.record(value)
        }
        _ = recent.withLock { $0.record(value) }
    }

    func event(_ name: String, _ duration: Duration) {
        let value = Self.microseconds(duration)
        state.withLock { state in
            let key = Self.key(name, in: state.events)
            if state.events[key] == nil { state.events[key] = Self.histogram() }
            _ = state.events[key]!.record(value)
        }
        _ = recent.withLock { $0.record(value) }
    }

    func connected(_ duration: Duration) {
        state.withLock { state in
            _ = state.connect.record(Self.microseconds(duration))
            state.connected += 1
            state.peakConnected = max(state.peakConnected, state.connected)
        }
    }

    func received(_ name: String) { state.withLock { $0.received[Self.key(name, in: $0.received), default: 0] += 1 } }
    func error(_ kind: ErrorKind) { state.withLock { $0.errors[kind, default: 0] += 1 } }
    func started() { state.withLock { $0.started += 1 } }

    /// A user's session ended; `done`: it played its conn to the end.
    func ended(wasConnected: Bool, done: Bool) {
        state.withLock { state in
            if wasConnected { state.connected -= 1 }
            if done { state.completed += 1 }
        }
    }

    public var snapshot: Snapshot { state.withLock { $0 } }

    /// The latencies since the last call (the progress line's p50 and p99 are the last second's).
    public func takeRecent() -> Latencies {
        recent.withLock { recent in
            defer { recent.reset() }
            return recent
        }
    }

    /// This process's resident memory and its peak, in kilobytes (Linux; zero elsewhere).
    public static func memory() -> (current: Int, peak: Int) {
        guard let file = fopen("/proc/self/status", "r") else { return (0, 0) }
        defer { fclose(file) }
        var current = 0, peak = 0
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let value = Int(text.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
            if text.hasPrefix("VmRSS:") { current = value }
            if text.hasPrefix("VmHWM:") { peak = value }
        }
        return (current, peak)
    }
}
