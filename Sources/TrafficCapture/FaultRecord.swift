public import SocketIOProtocol

/// A fault the proxy injected on purpose (`siotap proxy --fault`): which rule, to which packet,
/// and what was done. The packet's own record is what its sender sent; this one says what became
/// of it on the way.
public struct FaultRecord: Sendable, Hashable, Decodable {
    /// What the proxy did.
    public enum Action: String, Sendable, Hashable, Codable, CaseIterable {
        case delay, drop, disconnect, refuseConnect = "refuse-connect", rewrite, throttle
    }

    /// The rule as it was given (`drop,type=ACK,dir=s2c`).
    public var rule: String
    public var action: Action
    /// The direction of the traffic it applied to, when it applied to a packet.
    public var dir: Direction?
    /// The `seq` of the packet record it applied to (absent for a timed disconnect).
    public var packet: Int?
    /// How long the packet was held (delay, throttle).
    public var delayMilliseconds: Double?
    /// What the proxy sent instead, without the Engine.IO `4`: the rewritten packet, or the
    /// CONNECT_ERROR it answered a refused CONNECT with.
    public var raw: String?
    /// For people: `how=reset`, the rewrite's path, a throttle's rate, …
    public var detail: String?

    private enum CodingKeys: String, CodingKey {
        case rule, action, dir, packet, raw, detail
        case delayMilliseconds = "delay_ms"
    }

    public init(
        rule: String, action: Action, dir: Direction? = nil, packet: Int? = nil, delayMilliseconds: Double? = nil, raw: String? = nil,
        detail: String? = nil
    ) {
        self.rule = rule
        self.action = action
        self.dir = dir
        self.packet = packet
        self.delayMilliseconds = delayMilliseconds
        self.raw = raw
        self.detail = detail
    }
}
