/// How a connection is cut on purpose: closed (a close frame, or on polling the session ended as
/// by its server) or reset (a TCP RST, as a network failure would).
public enum ConnectionCut: String, Sendable, Hashable, CaseIterable {
    case close, reset
}

/// What an interception stage decides for one message (and those it held before it), whatever
/// carries it: the proxy decides on Engine.IO packets, the WebSocket relay carries out the same
/// decision on frames (`map` turns one into the other).
public struct InterceptionDecision<Item: Sendable>: Sendable {
    public enum Delivery: Sendable {
        /// Kept, undecided, with the next message (a binary packet's attachments are coming).
        case hold
        /// It goes on as it came, and so do those held.
        case pass
        case drop
        /// These go instead.
        case replace([Item])
    }

    public var delivery: Delivery
    /// Seconds before it goes on; what follows in its direction waits behind it.
    public var delay: Double
    /// Sent back to the sender at once (a refused CONNECT's answer).
    public var reply: [Item]
    /// Cut the connection once it has gone on.
    public var cut: ConnectionCut?

    public init(_ delivery: Delivery = .pass, delay: Double = 0, reply: [Item] = [], cut: ConnectionCut? = nil) {
        self.delivery = delivery
        self.delay = delay
        self.reply = reply
        self.cut = cut
    }

    /// The same decision about other items (packets as the frames that carry them).
    public func map<Other: Sendable>(_ transform: (Item) -> Other) -> InterceptionDecision<Other> {
        let delivery: InterceptionDecision<Other>.Delivery = switch self.delivery {
        case .hold: .hold
        case .pass: .pass
        case .drop: .drop
        case .replace(let items): .replace(items.map(transform))
        }
        return InterceptionDecision<Other>(delivery, delay: delay, reply: reply.map(transform), cut: cut)
    }
}
