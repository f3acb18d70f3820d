import NIOConcurrencyHelpers
import NIOCore
import TransportCore
import TransportTLS
import WebSocketTransport
import HTTPClientTransport

/// Closes a server's connection that does not keep up its side of HTTP: a new connection that
/// has not sent a whole request head within `head` (nothing at all, or a byte a second), a body
/// that goes `body` without a byte, a kept-alive connection with no request for `keepAlive`
/// after its last answer. Nothing is timed while a request is being answered (a long-poll) or
/// after the connection left HTTP (a WebSocket, a tunnel).
///
/// One timer per connection that sets itself again, not one per request: NIO finds a cancelled
/// timer by searching its loop's whole queue, and a busy server would cancel thousands a second.
final class ConnectionDeadlines: Sendable {
    struct Limits: Sendable {
        var keepAlive: TimeAmount
        var head: TimeAmount
        var body: TimeAmount
    }

    private enum Phase {
        /// Waiting for a request's head, which must be whole by the deadline.
        case awaitingHead(deadline: NIODeadline)
        /// The head came; the body must keep coming.
        case receivingBody(lastByte: NIODeadline)
        /// Being answered, or no longer HTTP: untimed.
        case answering
    }

    private struct State {
        var phase: Phase
        var timer: Scheduled<Void>?
        /// When `timer` fires.
        var timerDue: NIODeadline?
        var stopped = false
    }

    private let state: NIOLockedValueBox<State>
    private let channel: any Channel
    private let limits: Limits

    init(_ channel: any Channel, limits: Limits) {
        self.channel = channel
        self.limits = limits
        let deadline = channel.eventLoop.now + limits.head
        state = NIOLockedValueBox(State(phase: .awaitingHead(deadline: deadline)))
        schedule(at: deadline)
    }

    /// A request's head has come.
    func requestBegan() {
        enter(.receivingBody(lastByte: channel.eventLoop.now))
    }

    /// A piece of its body has come.
    func bodyProgressed() {
        state.withLockedValue { state in
            if case .receivingBody = state.phase { state.phase = .receivingBody(lastByte: channel.eventLoop.now) }
        }
    }

    /// The whole request has come: it is answered (or the connection leaves HTTP) untimed.
    func requestReceived() {
        enter(.answering)
    }

    /// The answer went and the connection is kept: the next request has `keepAlive` to begin.
    func requestEnded() {
        enter(.awaitingHead(deadline: channel.eventLoop.now + limits.keepAlive))
    }

    /// The connection is done with: its timer goes.
    func stop() {
        state.withLockedValue { state in
            state.stopped = true
            state.timerDue = nil
            defer { state.timer = nil }
            return state.timer
        }?.cancel()
    }

    /// A timer already set for later fires, finds the phase not run out, and sets itself again;
    /// only a phase that runs out before the timer (keep-alive's 5 s after the first head's 10 s)
    /// replaces it.
    private func enter(_ phase: Phase) {
        let (due, replaced) = state.withLockedValue { state -> (NIODeadline?, Scheduled<Void>?) in
            state.phase = phase
            guard !state.stopped, let due = Self.due(of: phase, limits: limits) else { return (nil, nil) }
            if let timerDue = state.timerDue, timerDue <= due { return (nil, nil) }
            defer { state.timer = nil }
            return (due, state.timer)
        }
        replaced?.cancel()
        if let due { schedule(at: due) }
    }

    private static func due(of phase: Phase, limits: Limits) -> NIODeadline? {
        switch phase {
        case .awaitingHead(let deadline): deadline
        case .receivingBody(let lastByte): lastByte + limits.body
        case .answering: nil
        }
    }

    private func schedule(at deadline: NIODeadline) {
        state.withLockedValue { $0.timerDue = deadline }
        let timer = channel.eventLoop.scheduleTask(deadline: deadline) { self.fire() }
        state.withLockedValue { state in
            if state.timerDue == deadline { state.timer = timer }
        }
    }

    private func fire() {
        enum Next { case close, wait(NIODeadline), none }
        let next: Next = state.withLockedValue { state in
            state.timer = nil
            state.timerDue = nil
            guard !state.stopped, let due = Self.due(of: state.phase, limits: limits) else { return .none }
            return due <= channel.eventLoop.now ? .close : .wait(due)
        }
        switch next {
        case .close: channel.close(promise: nil)
        case .wait(let due): schedule(at: due)
        case .none: break
        }
    }
}
