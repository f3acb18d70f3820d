import Synchronization
import TrafficCapture

/// What the event loops saw, handled on one thread in the order it happened: decoding and
/// recording leave the relays' loops, and the capture's order is the traffic's.
///
/// The loops add an event (a frame, a record, a conn's end...) under the queue's lock, stamped
/// there, so stamps never go back in the queue's order; the observing thread takes them in
/// batches (about every 5 ms while traffic flows) and hands them to the ``ConnectionTracker``.
/// Measured: a batch of messages decoded on one thread costs less than the same messages decoded
/// on the loop between two relayed ones (Benchmarks/README.md, "CPU per relayed message").
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

    private let batches: BatchingQueue<Entry>
    /// Who handles the events: set by their owner once it exists (the tracker holds the queue).
    private final class Handler: Sendable {
        let body = Mutex<(@Sendable ([Entry]) -> Void)?>(nil)
    }
    private let handler = Handler()

    init(highWater: Int = defaultHighWater, highWaterBytes: Int = defaultHighWaterBytes) {
        batches = BatchingQueue(label: "siotap.observe", highWater: highWater, highWaterBytes: highWaterBytes) { [handler] entries in
            handler.body.withLock { $0 }?(entries)
        }
    }

    /// Who handles the events, each batch in order on the observing thread (set once, by their owner).
    func handle(with handle: @escaping @Sendable ([Entry]) -> Void) {
        handler.body.withLock { $0 = handle }
    }

    /// Adds an event; `bytes`: what it holds of the traffic (a frame's size), for the bound.
    func add(_ event: ConnectionTracker.Event, bytes: Int = 0) {
        batches.add(bytes: bytes) { order in
            // Stamped under the lock: times never go back in the order events are handled.
            let time = max(CaptureClock.secondsSince1970(), order.lastTime)
            order.lastTime = time
            return Entry(event: event, time: time)
        }
    }

    /// Events, and their bytes, not handled yet.
    var waiting: (events: Int, bytes: Int) {
        let waiting = batches.waiting
        return (waiting.items, waiting.bytes)
    }

    /// Whether a reader may go on reading: true, or false and `resume` is called (on the observing
    /// thread) once the backlog is down to half the high water.
    func admit(orResume resume: @escaping @Sendable () -> Void) -> Bool {
        batches.admit(orResume: resume)
    }

    /// Returns once every event added before it is handled. It does not wait for the queue to
    /// empty: under steady traffic (a proxy stopped under load) it never would.
    func flush() async {
        await batches.flushAdded()
    }
}
