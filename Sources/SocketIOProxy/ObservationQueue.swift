import Dispatch
import Synchronization
import TrafficCapture
#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#endif

/// What the event loops saw, handled on one thread in the order it happened: decoding and
/// recording leave the relays' loops, and the capture's order is the traffic's.
///
/// The loops add an event (a frame, a record, a conn's end...) under one lock, stamped there, so
/// stamps never go back in the queue's order; the observing thread takes them in batches (about
/// every 5 ms while traffic flows) and hands them to the ``ConnectionTracker``. Measured: a batch
/// of messages decoded on one thread costs less than the same messages decoded on the loop
/// between two relayed ones (Benchmarks/README.md, "CPU per relayed message").
///
/// Nothing waits on it: past `highWater` events or `highWaterBytes` of frames waiting,
/// ``admit(orResume:)`` pauses the proxy's readers until it is down to half, as the capture queue does.
final class ObservationQueue: Sendable {
    struct Entry: Sendable {
        let event: ConnectionTracker.Event
        /// When the loop added it (seconds since 1970): the time of its records.
        let time: Double
    }

    static let defaultHighWater = 50_000
    static let defaultHighWaterBytes = 64 << 20
    /// How long events gather between two batches while traffic flows.
    static let gatheringMicroseconds: UInt32 = 5000

    private struct State {
        var pending: [Entry] = []
        /// The last batch's array, emptied, its capacity kept for the next.
        var spare: [Entry] = []
        var pendingBytes = 0
        /// Taken by the observing thread, not yet handled.
        var working = 0
        var workingBytes = 0
        var scheduled = false
        var lastTime = 0.0
        var paused: [@Sendable () -> Void] = []
        /// Events added and handled so far, for ``flush()``.
        var added = 0
        var handled = 0
        var flushes: [(upTo: Int, done: CheckedContinuation<Void, Never>)] = []
    }

    private let state = Mutex(State())
    /// Set while past the high water: asked on every socket read, without the lock.
    private let behind = Atomic<Bool>(false)
    private let thread = DispatchQueue(label: "siotap.observe")
    private let handler = Mutex<(@Sendable ([Entry]) -> Void)?>(nil)
    private let highWater: Int
    private let highWaterBytes: Int

    init(highWater: Int = defaultHighWater, highWaterBytes: Int = defaultHighWaterBytes) {
        self.highWater = max(1, highWater)
        self.highWaterBytes = max(1, highWaterBytes)
    }

    /// Who handles the events (set once, by their owner).
    func handle(with handler: @escaping @Sendable ([Entry]) -> Void) {
        self.handler.withLock { $0 = handler }
    }

    /// Adds an event; `bytes`: what it holds of the traffic (a frame's size), for the bound.
    func add(_ event: ConnectionTracker.Event, bytes: Int = 0) {
        let schedule = state.withLock { state -> Bool in
            // Stamped under the lock: times never go back in the order events are handled.
            let time = max(CaptureClock.secondsSince1970(), state.lastTime)
            state.lastTime = time
            state.pending.append(Entry(event: event, time: time))
            state.added += 1
            state.pendingBytes += bytes
            if isBehind(state) { behind.store(true, ordering: .relaxed) }
            defer { state.scheduled = true }
            return !state.scheduled
        }
        if schedule { thread.async { self.drain() } }
    }

    /// Events, and their bytes, not handled yet.
    var waiting: (events: Int, bytes: Int) { state.withLock { ($0.pending.count + $0.working, $0.pendingBytes + $0.workingBytes) } }

    /// Whether a reader may go on reading: true, or false and `resume` is called (on the observing
    /// thread) once the backlog is down to half the high water.
    func admit(orResume resume: @escaping @Sendable () -> Void) -> Bool {
        guard behind.load(ordering: .relaxed) else { return true }
        return state.withLock { state in
            guard isBehind(state) else { return true }
            state.paused.append(resume)
            return false
        }
    }

    private func isBehind(_ state: State) -> Bool {
        state.pending.count + state.working > highWater || state.pendingBytes + state.workingBytes > highWaterBytes
    }

    /// Returns once every event added before it is handled. It does not wait for the queue to
    /// empty: under steady traffic (a proxy stopped under load) it never would.
    func flush() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state in
                guard state.handled < state.added else { return true }
                // Events are waiting, so the thread is scheduled, and will handle them.
                state.flushes.append((state.added, continuation))
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// Handles events until none is waiting; between batches, unless behind, the next gather.
    private func drain() {
        while drainOnce() {
            if !behind.load(ordering: .relaxed) { usleep(Self.gatheringMicroseconds) }
        }
    }

    /// Handles the events waiting, if any; `false` when there were none (the thread is then
    /// unscheduled: the next event schedules it).
    private func drainOnce() -> Bool {
        var entries: [Entry] = state.withLock { state in
            let taken = state.pending
            state.pending = state.spare
            state.spare = []
            state.working = taken.count
            state.workingBytes = state.pendingBytes
            state.pendingBytes = 0
            if taken.isEmpty { state.scheduled = false }
            return taken
        }
        guard !entries.isEmpty else { return false }
        handler.withLock { $0 }?(entries)
        let count = entries.count
        entries.removeAll(keepingCapacity: true)
        let (resumed, flushed) = state.withLock { [entries] state -> ([@Sendable () -> Void], [CheckedContinuation<Void, Never>]) in
            state.spare = entries
            state.working = 0
            state.workingBytes = 0
            state.handled += count
            let handled = state.handled
            let flushed = state.flushes.filter { $0.upTo <= handled }.map(\.done)
            state.flushes.removeAll { $0.upTo <= handled }
            guard state.pending.count <= highWater / 2, state.pendingBytes <= highWaterBytes / 2 else { return ([], flushed) }
            behind.store(false, ordering: .relaxed)
            defer { state.paused = [] }
            return (state.paused, flushed)
        }
        for resume in resumed { resume() }
        for done in flushed { done.resume() }
        return true
    }
}
