public import SocketIOProtocol

/// Something a person did to a live conn (`siotap proxy` with the inspector's API or `--break`):
/// a packet emitted into it, a packet held by a breakpoint and what became of it, an injected
/// emit's answer taken out of the stream. The packets' own records stay what their senders sent;
/// these say what changed on the way, as ``FaultRecord``s do for `--fault`.
public struct InterventionRecord: Sendable, Hashable, Decodable {
    public enum Action: String, Sendable, Hashable, Codable, CaseIterable {
        /// A packet the proxy sent in a peer's name (`raw`, toward `dir`'s receiver).
        case emit
        /// A packet held by a breakpoint (`packet`); what follows it in its direction waits.
        case hold
        /// A held packet let go as it came.
        case release
        /// A held packet let go changed (`raw` is what went).
        case edit
        /// A held packet not delivered.
        case drop
        /// A held packet let go unchanged because nobody decided within `--break-timeout`.
        case timeout
        /// The answer (ACK) to an emit the proxy made (`answers`), taken out of the stream: the
        /// peer it was meant for never asked for it.
        case answer
    }

    /// Who acted: the inspector's page, the HTTP API, a `--break` given on the command line, or
    /// the proxy itself (a timeout).
    public enum Actor: String, Sendable, Hashable, Codable, CaseIterable {
        case ui, api, cli, proxy
    }

    public var action: Action
    public var by: Actor
    /// The direction of the packet concerned (an emit's: `c2s` goes to the server).
    public var dir: Direction
    /// The `seq` of the packet record it is about (all but `emit`).
    public var packet: Int?
    /// The breakpoint that held it.
    public var breakpoint: String?
    /// What the proxy sent, without the Engine.IO `4`: an emit, or an edited packet.
    public var raw: String?
    /// `raw`'s binary attachments in order, base64.
    public var attachments: [String]?
    /// `answer`: the `seq` of the emit it answers.
    public var answers: Int?
    /// How long the packet was held.
    public var heldMilliseconds: Double?
    public var detail: String?

    private enum CodingKeys: String, CodingKey {
        case action, by, dir, packet, breakpoint, raw, attachments, answers, detail
        case heldMilliseconds = "held_ms"
    }

    public init(
        action: Action, by: Actor, dir: Direction, packet: Int? = nil, breakpoint: String? = nil, raw: String? = nil,
        attachments: [String]? = nil, answers: Int? = nil, heldMilliseconds: Double? = nil, detail: String? = nil
    ) {
        self.action = action
        self.by = by
        self.dir = dir
        self.packet = packet
        self.breakpoint = breakpoint
        self.raw = raw
        self.attachments = attachments
        self.answers = answers
        self.heldMilliseconds = heldMilliseconds
        self.detail = detail
    }
}
