import NIOCore
import SocketIOProtocol

/// What a user's packets go over: a WebSocket on the event loop, or siotap's client for polling.
protocol UserTransport: AnyObject {
    func send(_ packet: SocketPacket)
    /// Ends the Engine.IO session (a close packet, then the transport's end).
    func close()
}

/// A virtual user's machine on its event loop: feeds it, runs its one timer, carries out its
/// actions (packets to the transport, figures to the metrics) and reports the end once.
final class UserSession {
    private var machine: VirtualUserMachine
    private let loop: any EventLoop
    private let metrics: LoadMetrics
    private let onEnd: @Sendable (_ done: Bool) -> Void
    weak var transport: (any UserTransport)?
    private var actions: [VirtualUserMachine.Action] = []
    private var timer: (at: ContinuousClock.Instant, task: Scheduled<Void>)?
    private var ended = false

    init(machine: VirtualUserMachine, loop: any EventLoop, metrics: LoadMetrics, onEnd: @escaping @Sendable (Bool) -> Void) {
        self.machine = machine
        self.loop = loop
        self.metrics = metrics
        self.onEnd = onEnd
    }

    func open() { step { $0.open(at: .now, into: &$1) } }
    func receive(_ packet: SocketPacket) { step { $0.receive(packet, at: .now, into: &$1) } }
    func stop() { step { $0.stop(into: &$1) } }

    /// The transport is gone (before the open packet, too: the session then never was).
    func transportEnded() {
        step { $0.transportEnded(into: &$1) }
    }

    private func step(_ body: (inout VirtualUserMachine, inout [VirtualUserMachine.Action]) -> Void) {
        loop.preconditionInEventLoop()
        body(&machine, &actions)
        var finished: (wasConnected: Bool, done: Bool)?
        for action in actions {
            switch action {
            case .send(let packet): transport?.send(packet)
            case .connected(let duration): metrics.connected(duration)
            case .ack(let name, let duration): metrics.ack(name, duration)
            case .event(let name, let duration): metrics.event(name, duration)
            case .received(let name): metrics.received(name)
            case .error(let kind): metrics.error(kind)
            case .finish(let wasConnected, let done): finished = (wasConnected, done)
            }
        }
        actions.removeAll(keepingCapacity: true)
        if let finished {
            end(wasConnected: finished.wasConnected, done: finished.done)
        } else {
            arm()
        }
    }

    private func end(wasConnected: Bool, done: Bool) {
        guard !ended else { return }
        ended = true
        timer?.task.cancel()
        timer = nil
        transport?.close()
        metrics.ended(wasConnected: wasConnected, done: done)
        onEnd(done)
    }

    /// One timer, at the machine's earliest wish; a later wish waits for it to fire.
    private func arm() {
        guard let wake = machine.wake else { return }
        if let timer, timer.at <= wake { return }
        timer?.task.cancel()
        let delay = ContinuousClock.now.duration(to: wake)
        let nanoseconds = max(0, delay.components.seconds * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000)
        let bound = NIOLoopBound(self, eventLoop: loop)
        let task = loop.scheduleTask(in: .nanoseconds(nanoseconds)) {
            let session = bound.value
            session.timer = nil
            session.step { $0.tick(at: .now, into: &$1) }
        }
        timer = (wake, task)
    }
}
