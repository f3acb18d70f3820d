public import NIOCore

/// Runs a task's work on one event loop's thread instead of Swift's shared pool.
///
/// A proxied request hands over from the event loop to a task and back several times (the
/// client's request read, the upstream's exchange, the answer written); on the shared pool each
/// hand-over is a thread wake-up, on the connection's own loop it is a queued closure on the thread
/// already running. Only for work that is short and never blocks: the loop's I/O waits for it.
public final class EventLoopTaskExecutor: TaskExecutor {
    public let eventLoop: any EventLoop

    public init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
