import Dispatch
import Synchronization
#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#endif

/// Who handles what is added to a ``BatchingQueue``.
public enum BatchDraining: Sendable {
    /// The queue's own thread, items gathering between batches: live traffic, whose producers
    /// (event loops) must never wait.
    case background
    /// The producer, when it calls ``BatchingQueue/flush()`` or ``BatchingQueue/close()``: a
    /// file's import, which has nothing better to do, in batches, on its own thread.
    case onFlush
}

/// Items added from any thread and handled on one, in the order they were added, many to a
/// batch: the shape under the proxy's observing (``CaptureQueue``'s producers' producer) and the
/// capture's writing. Adding never waits; past `highWater` items or `highWaterBytes` of them
/// waiting, ``admit(orResume:)`` says no until the backlog is down to half, and the caller (a
/// socket reader) stops until then. Nothing is dropped before ``close()``.
///
/// While items keep coming, the handling thread gathers them for ``gatheringMicroseconds``
/// between batches: one wake-up for many, measured to cost less than a wake-up per event loop
/// tick (Benchmarks/README.md).
///
/// The hot calls are inlinable: the proxy adds an item per relayed message, from another module,
/// and the queue unspecialised there would look up its generic metadata every time.
public final class BatchingQueue<Item: Sendable>: Sendable {
    public typealias Draining = BatchDraining

    /// What ``add(bytes:_:)``'s maker sees under the queue's lock, so that items are numbered and
    /// stamped in the order they are handled.
    public struct Order: Sendable {
        /// Items added before this one.
        public let added: Int
        /// What the maker left for the next (the last time stamped, for instance).
        public var lastTime: Double

        @usableFromInline init(added: Int, lastTime: Double) {
            self.added = added
            self.lastTime = lastTime
        }
    }

    @usableFromInline
    struct State: Sendable {
        @usableFromInline var pending: [Item] = []
        /// The last batch's array, emptied, its capacity kept for the next (up to ``spareLimit``).
        @usableFromInline var spare: [Item] = []
        @usableFromInline var pendingBytes = 0
        /// Taken by the handling thread, not yet handled.
        @usableFromInline var working = 0
        @usableFromInline var workingBytes = 0
        @usableFromInline var scheduled = false
        @usableFromInline var closed = false
        @usableFromInline var added = 0
        @usableFromInline var lastTime = 0.0
        @usableFromInline var handled = 0
        /// Readers paused until the backlog is down to half the high water.
        @usableFromInline var paused: [@Sendable () -> Void] = []
        @usableFromInline var flushes: [(upTo: Int, done: CheckedContinuation<Void, Never>)] = []

        @usableFromInline init() {}
    }

    /// How long items gather between two batches while they keep coming. 5 ms rather than 1: about
    /// 0.8 µs less of the WebSocket relay's 28 µs per round trip in two A/B runs of the capture
    /// writer; a record reaches the file and the live view at most 5 ms later, which no one
    /// watching can tell.
    public static var gatheringMicroseconds: UInt32 { 5000 }

    /// The most items a kept batch array holds: 5 ms of traffic is a few hundred.
    static var spareLimit: Int { 4096 }

    @usableFromInline let state = Mutex(State())
    /// Set while past the high water: asked on every socket read, without the lock.
    @usableFromInline let behind = Atomic<Bool>(false)
    @usableFromInline let thread: DispatchQueue
    @usableFromInline let highWater: Int
    @usableFromInline let highWaterBytes: Int
    @usableFromInline let draining: Draining
    private let handler: @Sendable ([Item]) -> Void

    /// - Parameters:
    ///   - label: the handling thread's name.
    ///   - handle: each batch, in order, on the handling thread.
    public init(
        label: String, highWater: Int, highWaterBytes: Int, draining: Draining = .background, handle: @escaping @Sendable ([Item]) -> Void
    ) {
        thread = DispatchQueue(label: label)
        self.highWater = max(1, highWater)
        self.highWaterBytes = max(1, highWaterBytes)
        self.draining = draining
        handler = handle
    }

    /// Adds the item `make` makes (under the lock, in the order items are handled); `bytes`: what
    /// it weighs, for the bound. Returns how many were added with it, or `nil` once closed.
    @inlinable @discardableResult
    public func add(bytes: Int, _ make: (inout Order) -> Item) -> Int? {
        let added = state.withLock { state -> (schedule: Bool, count: Int)? in
            guard !state.closed else { return nil }
            var order = Order(added: state.added, lastTime: state.lastTime)
            let item = make(&order)
            state.lastTime = order.lastTime
            state.added += 1
            state.pending.append(item)
            state.pendingBytes += bytes
            if Self.isBehind(state, highWater, highWaterBytes) { behind.store(true, ordering: .relaxed) }
            guard draining == .background else { return (false, state.added) }
            defer { state.scheduled = true }
            return (!state.scheduled, state.added)
        }
        guard let added else { return nil }
        if added.schedule { thread.async { self.drain() } }
        return added.count
    }

    /// Whether a reader may go on reading: true, or false and `resume` is called (on the handling
    /// thread) once the backlog is down to half the high water.
    @inlinable
    public func admit(orResume resume: @escaping @Sendable () -> Void) -> Bool {
        guard behind.load(ordering: .relaxed) else { return true }
        return state.withLock { state in
            guard !state.closed, Self.isBehind(state, highWater, highWaterBytes) else { return true }
            state.paused.append(resume)
            return false
        }
    }

    @inlinable
    static func isBehind(_ state: State, _ highWater: Int, _ highWaterBytes: Int) -> Bool {
        state.pending.count + state.working > highWater || state.pendingBytes + state.workingBytes > highWaterBytes
    }

    /// Items added so far.
    public var added: Int { state.withLock { $0.added } }

    /// What the arrays waiting to take items can hold without growing (for tests).
    var reservedCapacity: Int { state.withLock { $0.pending.capacity + $0.spare.capacity } }

    /// Items, and their bytes, not handled yet.
    public var waiting: (items: Int, bytes: Int) { state.withLock { ($0.pending.count + $0.working, $0.pendingBytes + $0.workingBytes) } }

    /// Returns once every item added before it is handled, without waiting for the queue to
    /// empty: under steady traffic (a proxy stopped under load) it never would. Live
    /// (``Draining/background``) only.
    public func flushAdded() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state in
                guard state.handled < state.added else { return true }
                // Items are waiting, so the thread is scheduled, and will handle them.
                state.flushes.append((state.added, continuation))
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// Handles items until none is waiting, on the handling thread, and returns then: for a
    /// producer that has stopped adding (or that drains ``Draining/onFlush``).
    public func flush() {
        thread.sync { while drainOnce() {} }
    }

    /// Handles what is queued; items added later are dropped (the program is stopping).
    public func close() {
        let paused = state.withLock { state in
            state.closed = true
            defer { state.paused = [] }
            return state.paused
        }
        for resume in paused { resume() }
        flush()
    }

    /// Handles items until none is waiting; between batches, unless behind, the next gather.
    /// The queue's own thread, so sleeping holds up nobody.
    @usableFromInline
    func drain() {
        while drainOnce() {
            if !behind.load(ordering: .relaxed) { usleep(Self.gatheringMicroseconds) }
        }
    }

    /// Handles the items waiting, if any; `false` when there were none (the thread is then
    /// unscheduled: the next item schedules it).
    private func drainOnce() -> Bool {
        var batch: [Item] = state.withLock { state in
            let taken = state.pending
            state.pending = state.spare
            state.spare = []
            state.working = taken.count
            state.workingBytes = state.pendingBytes
            state.pendingBytes = 0
            if taken.isEmpty { state.scheduled = false }
            return taken
        }
        guard !batch.isEmpty else { return false }
        handler(batch)
        let count = batch.count
        // A batch of steady traffic is reused, not made again; one after a backlog (up to the high
        // water's worth) is let go, not held for good.
        batch.removeAll(keepingCapacity: batch.capacity <= Self.spareLimit)
        let (resumed, flushed) = state.withLock { [batch] state -> ([@Sendable () -> Void], [CheckedContinuation<Void, Never>]) in
            state.spare = batch
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
