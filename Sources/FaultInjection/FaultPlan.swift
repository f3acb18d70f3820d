import Synchronization
public import TrafficCapture

/// The rules a proxy runs with (`--fault`, `--faults`), and what they share across conns: how
/// many CONNECTs each `refuse-connect` has left. Each conn decides with its own
/// ``ConnectionFaults``.
public final class FaultPlan: Sendable {
    public let rules: [FaultRule]
    /// Makes `p=` choices repeatable: each conn draws from its own generator, seeded with this and
    /// the conn's id, so one conn's draws do not depend on how others interleave.
    public let seed: UInt64
    /// Whether any rule throttles: most plans do not, and every message asks.
    public let throttles: Bool
    private let refusalsLeft: Mutex<[Int: Int]>

    public init(rules: [FaultRule], seed: UInt64) {
        self.rules = rules
        self.seed = seed
        throttles = rules.contains { if case .throttle = $0.action { true } else { false } }
        var left: [Int: Int] = [:]
        for (index, rule) in rules.enumerated() {
            if case .refuseConnect(let count, _) = rule.action { left[index] = count }
        }
        refusalsLeft = Mutex(left)
    }

    /// The specs of a `--faults` file: a JSON array of the same strings `--fault` takes.
    public static func specs(fromJSON bytes: [UInt8]) throws(FaultRule.Invalid) -> [String] {
        let value: JSONValue
        do throws(JSONParseError) { value = try JSONValue.parse(bytes: bytes) } catch {
            throw FaultRule.Invalid("not JSON: \(error.description)")
        }
        guard let items = value.arrayValue else { throw FaultRule.Invalid("a faults file is a JSON array of rules, like [\"drop,type=ACK\"]") }
        var specs: [String] = []
        for item in items {
            guard let text = item.stringValue else { throw FaultRule.Invalid("each rule is a string, like \"delay=300ms,event=chat\"; found \(item.jsonText)") }
            specs.append(text)
        }
        return specs
    }

    /// Whether any rule needs whole messages (all but a timed disconnect do).
    public var inspectsMessages: Bool {
        rules.contains { if case .disconnect(after: _?, how: _) = $0.action { false } else { true } }
    }

    /// Takes one of the rule's refusals; false when it has none left.
    func takeRefusal(rule index: Int) -> Bool {
        refusalsLeft.withLock { left in
            guard let count = left[index], count > 0 else { return false }
            left[index] = count - 1
            return true
        }
    }
}

/// One conn's faults: the rules' decisions for each packet it carries, in order, with its own
/// random draws, throttles and clock. A value, kept with the conn's observation.
public struct ConnectionFaults: Sendable {
    public let plan: FaultPlan
    public let conn: String
    public let engineVersion: EngineIOVersion
    /// When the conn started (seconds since 1970): `after=` and timed disconnects count from it.
    public let start: Double
    private var random: SplitMix64
    /// When each direction's throttle has sent what it was given.
    private var throttleFree = PerDirection<Double>(0)
    /// Delayed packets keep their order: each is released no earlier than the one before it.
    private var lastRelease = PerDirection<Double>(0)

    public init(plan: FaultPlan, conn: String, engineVersion: EngineIOVersion, start: Double) {
        self.plan = plan
        self.conn = conn
        self.engineVersion = engineVersion
        self.start = start
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in conn.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        random = SplitMix64(seed: plan.seed ^ hash)
    }

    /// What becomes of one packet.
    public struct Decision: Sendable {
        /// Not delivered (a drop, or a refused CONNECT).
        public var drop = false
        /// Seconds to hold it (and what follows it in its direction) before delivering.
        public var delay: Double = 0
        /// Delivered in this form instead (a rewrite), binary values in place.
        public var replacement: SocketPacket?
        /// Sent back to the packet's sender (a refused CONNECT's CONNECT_ERROR).
        public var reply: SocketPacket?
        /// The conn is cut once the packet has been delivered.
        public var disconnect: ConnectionCut?
        /// One per rule that applied, each naming the packet.
        public var records: [FaultRecord] = []

        public init() {}

        /// Whether the packet still goes as it came (it may be late).
        public var deliversUnchanged: Bool { !drop && replacement == nil }
    }

    /// The rules' decision for a packet, whose record is `seq` in the capture, seen at `now`.
    public mutating func decide(_ packet: PacketRecord, seq: Int, now: Double) -> Decision {
        var decision = Decision()
        let record = CaptureRecord(seq: seq, conn: conn, .packet(packet))
        let elapsed = now - start
        for (index, rule) in plan.rules.enumerated() {
            guard !decision.drop, elapsed >= rule.after, rule.filter.matches(record) else { continue }
            switch rule.action {
            case .throttle, .disconnect(after: _?, how: _): continue
            default: break
            }
            guard rule.percent >= 100 || random.percent() < rule.percent else { continue }
            var fault = FaultRecord(rule: rule.spec, action: rule.recordAction, dir: packet.dir, packet: seq)
            switch rule.action {
            case .delay(let seconds, let jitter):
                let held = max(0, seconds + (jitter > 0 ? (random.unit() * 2 - 1) * jitter : 0))
                decision.delay += held
                fault.delayMilliseconds = (held * 1_000_000).rounded() / 1000
            case .drop:
                decision.drop = true
            case .disconnect(_, let how):
                decision.disconnect = how
                fault.detail = "how=\(how.rawValue), once the packet has passed"
            case .refuseConnect(_, let message):
                guard packet.type == .connect, packet.dir == .clientToServer, plan.takeRefusal(rule: index) else { continue }
                decision.drop = true
                let data: JSONValue = engineVersion == .v3 ? .string(message) : .object(["message": .string(message)])
                let reply = SocketPacket(.connectError, namespace: packet.nsp, data: data)
                decision.reply = reply
                fault.raw = SocketIOCodec.encode(reply).text
                fault.dir = .serverToClient
            case .rewrite(let edits):
                var rewritten = decision.replacement ?? SocketPacket(record: packet)
                var missing: [String] = []
                for edit in edits where !edit.apply(to: &rewritten) {
                    switch edit {
                    case .set(let path, _), .unset(let path): missing.append(path.description)
                    }
                }
                if missing.count == edits.count {
                    fault.detail = "not applied: no \(missing.joined(separator: ", ")) in this packet"
                } else {
                    decision.replacement = rewritten
                    fault.raw = SocketIOCodec.encode(rewritten).text
                    if !missing.isEmpty { fault.detail = "no \(missing.joined(separator: ", ")) in this packet" }
                }
            case .throttle:
                continue
            }
            decision.records.append(fault)
        }
        if decision.delay > 0 {
            let release = max(now + decision.delay, lastRelease[packet.dir])
            decision.delay = release - now
            lastRelease[packet.dir] = release
        } else if lastRelease[packet.dir] > now {
            // Behind a delayed packet: it waits its turn, without a record of its own.
            decision.delay = lastRelease[packet.dir] - now
        }
        return decision
    }

    /// Seconds a message of `bytes` must wait for `dir`'s throttles at `now`, with its record
    /// when it waits at all (`packet`: the seq of what it carries, when known).
    public mutating func throttle(bytes: Int, dir: Direction, now: Double, packet: Int? = nil) -> (delay: Double, record: FaultRecord?) {
        guard plan.throttles else { return (0, nil) }
        let context = CaptureRecord(conn: conn, .packet(PacketRecord(dir: dir, transport: .websocket, type: .event, nsp: "/", raw: "")))
        var wait = 0.0
        for rule in plan.rules {
            guard case .throttle(let rate) = rule.action, now - start >= rule.after, matchesBytes(rule, context) else { continue }
            let begin = max(now, throttleFree[dir])
            throttleFree[dir] = begin + Double(bytes) / rate
            wait = max(wait, begin - now)
            guard wait >= 0.001 else { continue }
            return (wait, FaultRecord(
                rule: rule.spec, action: .throttle, dir: dir, packet: packet, delayMilliseconds: (wait * 1_000_000).rounded() / 1000,
                detail: "\(bytes) bytes at \(Self.rateText(rate))"
            ))
        }
        return (wait, nil)
    }

    private func matchesBytes(_ rule: FaultRule, _ context: CaptureRecord) -> Bool {
        rule.filter.terms.allSatisfy { term in
            term.key == "dir" ? term.matches(context) : term.key == "conn" ? term.value == conn : true
        }
    }

    /// The first timed disconnect for this conn: seconds from its start, and how.
    public var timedDisconnect: (rule: FaultRule, after: Double, how: ConnectionCut)? {
        for rule in plan.rules {
            guard case .disconnect(let after?, let how) = rule.action else { continue }
            if rule.filter.terms.allSatisfy({ $0.key != "conn" || $0.value == conn }) { return (rule, after, how) }
        }
        return nil
    }

    static func rateText(_ rate: Double) -> String {
        rate >= 1_000_000 ? "\(trim(rate / 1_000_000)) MB/s" : rate >= 1000 ? "\(trim(rate / 1000)) kB/s" : "\(trim(rate)) B/s"
    }

    private static func trim(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String((value * 100).rounded() / 100)
    }
}

extension SplitMix64 {
    /// In [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
    /// In [0, 100).
    mutating func percent() -> Double { unit() * 100 }
}
