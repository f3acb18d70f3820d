import FaultInjection
import SocketIOProtocol

/// A polling conn's side of fault injection, as a value: the packets the proxy owes the client (a
/// refused CONNECT's answer; what an upstream long-poll brought after the client's had been
/// answered early), the client's long-poll waiting for an answer, whether one is out upstream, and
/// whether the conn was cut. The proxy answers a client's long-poll itself when it has something
/// to say, and never has two long-polls out upstream (Engine.IO servers refuse overlapping ones).
struct PollingFaults<Waiter> {
    var outbox: [EnginePacket] = []
    var waiting: Waiter?
    var upstreamPolling = false
    var cut: ConnectionCut?
    /// The client page's origin (`Origin`), for the CORS headers of the answers the proxy makes.
    var origin: String?

    enum Start {
        /// The conn was cut: the session is gone.
        case gone(ConnectionCut)
        /// Answer at once with these.
        case answer([EnginePacket])
        /// Wait for the upstream's answer (sending the long-poll upstream when `send`).
        case wait(send: Bool)
    }

    /// The client's long-poll came. A long-poll still waiting (the client should not send two) is
    /// returned to be answered with nothing.
    mutating func clientPolls(_ waiter: Waiter) -> (Start, replaced: Waiter?) {
        if let cut { return (.gone(cut), nil) }
        if !outbox.isEmpty {
            defer { outbox = [] }
            return (.answer(outbox), nil)
        }
        let replaced = waiting
        waiting = waiter
        if upstreamPolling { return (.wait(send: false), replaced) }
        upstreamPolling = true
        return (.wait(send: true), replaced)
    }

    /// The upstream answered the long-poll: who gets the answer, or nil when the client's was
    /// already answered (the packets are then kept with ``keep(_:)``).
    mutating func upstreamAnswered() -> Waiter? {
        upstreamPolling = false
        defer { waiting = nil }
        return waiting
    }

    mutating func keep(_ packets: [EnginePacket]) {
        outbox += packets
    }

    /// The proxy has packets for the client: the long-poll waiting gets them now, or the next one.
    mutating func send(_ packets: [EnginePacket]) -> Waiter? {
        guard let waiter = waiting else {
            outbox += packets
            return nil
        }
        waiting = nil
        return waiter
    }

    /// The conn is cut; returns the long-poll to end.
    mutating func cut(_ how: ConnectionCut) -> Waiter? {
        cut = how
        outbox = []
        defer { waiting = nil }
        return waiting
    }
}
