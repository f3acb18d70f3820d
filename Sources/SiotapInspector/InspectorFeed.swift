public import TrafficCapture
import Synchronization

/// The records the inspector shows: the latest `capacity` of them, each with its line exactly as
/// the capture has it, and the pages watching live. Records come from one thread at a time (the
/// capture's writer, or the file being followed), in file order.
public final class InspectorFeed: Sendable {
    public struct Entry: Sendable {
        public var record: CaptureRecord
        /// The record's JSON line, as written to the capture.
        public var line: String
    }

    public typealias Watcher = @Sendable (String) -> Void

    private struct State {
        var entries: [Entry] = []
        /// About the bytes `entries` hold (each line and its record: twice the line).
        var bytes = 0
        /// Records no longer held here (they are only in the file).
        var dropped = 0
        var watchers: [Int: Watcher] = [:]
        var nextWatcher = 0
    }

    /// How many records are held for pages opened later.
    public let capacity: Int
    /// And at most about this many bytes of them: the last 100,000 records could be gigabytes.
    public let capacityBytes: Int
    public static let defaultCapacityBytes = 256 << 20
    /// Where the records come from, as the page names it (`capture.jsonl`, `siotap proxy`).
    public let source: String
    private let state = Mutex(State())

    public init(source: String, capacity: Int = 100_000, capacityBytes: Int = InspectorFeed.defaultCapacityBytes) {
        self.source = source
        self.capacity = max(1, capacity)
        self.capacityBytes = max(1, capacityBytes)
    }

    /// A record read from a file, with the line it was read from.
    public func add(_ record: CaptureRecord, line: String) {
        // Watchers are told under the lock, so that a page being opened gets each line once and in order.
        state.withLock { state in
            state.entries.append(Entry(record: record, line: line))
            state.bytes += 2 * line.utf8.count
            // Trimmed in steps, not per record: removing from the front moves the whole array.
            if state.entries.count >= capacity + capacity / 8 + 1 {
                let excess = state.entries.count - capacity
                state.bytes -= state.entries[..<excess].reduce(0) { $0 + 2 * $1.line.utf8.count }
                state.entries.removeFirst(excess)
                state.dropped += excess
            }
            if state.bytes > capacityBytes {
                // The oldest go until a quarter of the room is free again (the newest stays, whatever its size).
                var excess = 0
                while excess < state.entries.count - 1, state.bytes > capacityBytes - capacityBytes / 4 {
                    state.bytes -= 2 * state.entries[excess].line.utf8.count
                    excess += 1
                }
                state.entries.removeFirst(excess)
                state.dropped += excess
            }
            for watcher in state.watchers.values { watcher(line) }
        }
    }

    /// A page opened now: `start` is given the records held (and how many are no longer), then
    /// every new line goes to `watcher` until ``unwatch(_:)``. Nothing is missed or sent twice in
    /// between (`start` runs under the feed's lock: it must only queue what it sends).
    public func watch(start: ([Entry], _ dropped: Int) -> Void, then watcher: @escaping Watcher) -> Int {
        state.withLock { state in
            let id = state.nextWatcher
            state.nextWatcher += 1
            state.watchers[id] = watcher
            start(Array(state.entries.suffix(capacity)), state.dropped + max(0, state.entries.count - capacity))
            return id
        }
    }

    public func unwatch(_ id: Int) {
        _ = state.withLock { $0.watchers.removeValue(forKey: id) }
    }

    /// The held records a selection takes: `conn` (any when `nil`) and the filter. An export of
    /// the selection also takes each selected conn's `session` and `close`, so it reads as a
    /// capture of those conns on its own.
    public func select(conn: String?, filter: CaptureFilter, forExport: Bool = false) -> [Entry] {
        let entries = state.withLock { Array($0.entries.suffix(capacity)) }
        let chosen = entries.filter { entry in (conn == nil || entry.record.conn == conn) && filter.matches(entry.record) }
        guard forExport else { return chosen }
        let conns = Set(chosen.compactMap(\.record.conn))
        return entries.filter { entry in
            if (conn == nil || entry.record.conn == conn) && filter.matches(entry.record) { return true }
            guard let id = entry.record.conn, conns.contains(id) else { return false }
            switch entry.record.body {
            case .session, .close: return true
            default: return false
            }
        }
    }
}
