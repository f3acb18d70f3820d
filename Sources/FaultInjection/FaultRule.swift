public import TrafficCapture

/// One `--fault` rule: an action, the packets it applies to (the same terms as `--filter`), how
/// often (`p=`) and from when (`after=`).
///
///     delay=300ms,jitter=50ms,event=chat
///     drop,type=ACK,dir=s2c,p=50
///     disconnect=2s,how=reset            disconnect,event=logout
///     refuse-connect=1,message=jwt expired,nsp=/admin
///     set=args[0].price:0,event=quote    unset=args[0].token
///     throttle=10kB/s,dir=s2c
public struct FaultRule: Sendable, Equatable, CustomStringConvertible {
    public enum Action: Sendable, Hashable {
        case delay(seconds: Double, jitter: Double)
        case drop
        /// `after`: seconds from the conn's start; nil: when a matching packet has passed.
        case disconnect(after: Double?, how: ConnectionCut)
        case refuseConnect(count: Int, message: String)
        case rewrite([Edit])
        case throttle(bytesPerSecond: Double)
    }

    public enum Edit: Sendable, Hashable {
        case set(JSONPath, JSONValue)
        case unset(JSONPath)
    }

    /// The spec as given: fault records name their rule by it.
    public let spec: String
    public var action: Action
    /// `--filter`'s terms, `conn` included.
    public var filter: CaptureFilter
    /// Percent of matching packets it applies to.
    public var percent: Double = 100
    /// Seconds from the conn's start before it applies.
    public var after: Double = 0

    public var description: String { spec }

    public var recordAction: FaultRecord.Action {
        switch action {
        case .delay: .delay
        case .drop: .drop
        case .disconnect: .disconnect
        case .refuseConnect: .refuseConnect
        case .rewrite: .rewrite
        case .throttle: .throttle
        }
    }

    /// Why a spec cannot be read.
    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    static let filterKeys = Set(CaptureFilter.keys)

    public init(_ spec: String) throws(Invalid) {
        self.spec = spec
        let terms = Self.split(spec)
        guard let first = terms.first, !first.key.isEmpty else { throw Invalid("empty fault rule") }
        var filterText: [String] = []
        var jitter: Double?
        var how: ConnectionCut?
        var message: String?
        var edits: [Edit] = []
        var action: Action?
        for (index, term) in terms.enumerated() {
            let (key, value) = (term.key, term.value)
            switch key {
            case _ where Self.filterKeys.contains(key):
                guard let value else { throw Invalid("\(key) needs a value (\(key)=...)") }
                filterText.append("\(key)=\(value)")
            case "p":
                guard let value, let number = Double(value.hasSuffix("%") ? String(value.dropLast()) : value), (0...100).contains(number) else {
                    throw Invalid("p takes a percentage from 0 to 100, not \(value ?? "nothing")")
                }
                percent = number
            case "after": after = try Self.duration(value, for: key)
            case "jitter": jitter = try Self.duration(value, for: key)
            case "how":
                guard let value, let cut = ConnectionCut(rawValue: value) else { throw Invalid("how is close or reset, not \(value ?? "nothing")") }
                how = cut
            case "message":
                guard let value else { throw Invalid("message needs a text (message=jwt expired)") }
                message = value
            case "set":
                guard let value, let colon = Self.pathEnd(value) else { throw Invalid("set takes PATH:JSON (set=args[0].price:0)") }
                let path = try JSONPath(String(value[..<colon]))
                let text = String(value[value.index(after: colon)...])
                do throws(JSONParseError) {
                    edits.append(.set(path, try JSONValue.parse(text)))
                } catch {
                    throw Invalid("set=\(value): \(text) is not JSON (\(error.description))")
                }
            case "unset":
                guard let value else { throw Invalid("unset takes a PATH (unset=args[0].token)") }
                edits.append(.unset(try JSONPath(value)))
            default:
                guard index == 0 else { throw Invalid("unknown term \(key) (the action comes first; then \(Self.filterKeys.sorted().joined(separator: ", ")), p, after)") }
                action = try Self.action(key, value)
            }
        }
        if action == nil, !edits.isEmpty { action = .rewrite([]) }
        guard var action else { throw Invalid("\(first.key) is not an action (delay, drop, disconnect, refuse-connect, set, unset, throttle)") }
        switch action {
        case .delay(let seconds, _): action = .delay(seconds: seconds, jitter: jitter ?? 0)
        case .disconnect(let after, _): action = .disconnect(after: after, how: how ?? .close)
        case .refuseConnect(let count, _):
            action = .refuseConnect(count: count, message: message ?? "refused by siotap")
            if !filterText.contains(where: { $0.hasPrefix("nsp=") }) { filterText.append("nsp=/") }
        case .rewrite: action = .rewrite(edits)
        default: break
        }
        if jitter != nil, case .delay = action {} else if jitter != nil { throw Invalid("jitter goes with delay") }
        if how != nil, case .disconnect = action {} else if how != nil { throw Invalid("how goes with disconnect") }
        if message != nil, case .refuseConnect = action {} else if message != nil { throw Invalid("message goes with refuse-connect") }
        if !edits.isEmpty, case .rewrite = action {} else if !edits.isEmpty { throw Invalid("set and unset cannot go with another action") }
        self.action = action
        do throws(CaptureFilter.Invalid) {
            filter = try CaptureFilter(filterText.joined(separator: ","))
        } catch {
            throw Invalid(error.description)
        }
        if case .throttle = action, filter.terms.contains(where: { $0.key != "dir" && $0.key != "conn" }) {
            throw Invalid("throttle applies to bytes, not packets: only dir= and conn= go with it")
        }
        if case .disconnect(after: _?, how: _) = action, filter.terms.contains(where: { $0.key != "conn" }) {
            throw Invalid("disconnect=DURATION is timed: only conn= goes with it (disconnect without a duration cuts when a matching packet passes)")
        }
    }

    private static func action(_ key: String, _ value: String?) throws(Invalid) -> Action {
        switch key {
        case "delay":
            return .delay(seconds: try duration(value, for: key), jitter: 0)
        case "drop":
            guard value == nil else { throw Invalid("drop takes no value") }
            return .drop
        case "disconnect":
            return .disconnect(after: try value.map { v throws(Invalid) in try duration(v, for: key) }, how: .close)
        case "refuse-connect":
            guard let count = Int(value ?? "1"), count > 0 else { throw Invalid("refuse-connect takes how many CONNECTs to refuse (refuse-connect=1)") }
            return .refuseConnect(count: count, message: "")
        case "throttle":
            return .throttle(bytesPerSecond: try rate(value))
        default:
            throw Invalid("\(key) is not an action (delay, drop, disconnect, refuse-connect, set, unset, throttle)")
        }
    }

    /// The longest duration a rule takes: longer is surely a typo, and anything up to it fits the
    /// event loop's timers (nanoseconds in 64 bits) with room to add.
    public static let longestDuration: Double = 86_400
    /// The slowest throttle: a byte a second.
    public static let slowestRate: Double = 1
    /// The fastest throttle: past it nothing on this machine is slowed.
    public static let fastestRate: Double = 1e12

    /// `300ms`, `2s`, `1.5s`, `1m`; at most a day.
    static func duration(_ text: String?, for key: String) throws(Invalid) -> Double {
        guard let text else { throw Invalid("\(key) needs a duration (300ms, 2s)") }
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60)]
        for (unit, scale) in units where text.hasSuffix(unit) {
            guard let number = Double(text.dropLast(unit.count)), number >= 0, number.isFinite else { continue }
            let seconds = number * scale
            guard seconds <= longestDuration else { throw Invalid("\(key)=\(text): at most a day (24h = 1440m = 86400s)") }
            return seconds
        }
        throw Invalid("\(key)=\(text): a duration is a number and ms, s or m (300ms, 2s)")
    }

    /// `10kB/s`, `1MB/s`, `500B/s`, `64KiB/s` (kB = 1,000 bytes, KiB = 1,024).
    static func rate(_ text: String?) throws(Invalid) -> Double {
        guard let text, text.hasSuffix("/s") else { throw Invalid("throttle takes a rate in bytes a second (throttle=10kB/s)") }
        let amount = text.dropLast(2)
        let units: [(String, Double)] = [("KiB", 1024), ("MiB", 1_048_576), ("kB", 1000), ("KB", 1000), ("MB", 1_000_000), ("B", 1)]
        for (unit, scale) in units where amount.hasSuffix(unit) {
            guard let number = Double(amount.dropLast(unit.count)), number > 0, number.isFinite else { continue }
            let rate = number * scale
            guard (slowestRate...fastestRate).contains(rate) else { throw Invalid("throttle=\(text): between 1B/s and 1000000MB/s") }
            return rate
        }
        throw Invalid("throttle=\(text): a rate is a number and B, kB, KiB, MB or MiB, then /s (10kB/s)")
    }

    /// Splits at commas that start a `key=` (or the bare `drop`), so a message or a JSON value
    /// may hold commas of its own.
    static func split(_ spec: String) -> [(key: String, value: String?)] {
        var pieces: [Substring] = []
        var start = spec.startIndex
        var index = spec.startIndex
        while index < spec.endIndex {
            if spec[index] == ",", startsTerm(spec[spec.index(after: index)...]) {
                pieces.append(spec[start..<index])
                start = spec.index(after: index)
            }
            index = spec.index(after: index)
        }
        pieces.append(spec[start...])
        return pieces.map { piece in
            let trimmed = piece.drop(while: \.isWhitespace)
            guard let equals = trimmed.firstIndex(of: "=") else { return (String(trimmed).trimmingTrailingWhitespace, nil) }
            return (String(trimmed[..<equals]).trimmingTrailingWhitespace, String(trimmed[trimmed.index(after: equals)...]))
        }
    }

    private static func startsTerm(_ rest: Substring) -> Bool {
        let trimmed = rest.drop(while: \.isWhitespace)
        let word = trimmed.prefix { $0.isLetter || $0 == "-" }
        guard !word.isEmpty else { return false }
        let after = trimmed.dropFirst(word.count)
        return after.first == "=" || (word == "drop" && (after.isEmpty || after.first == ","))
    }

    /// The colon that ends a `set` path: the first one outside brackets and quotes.
    static func pathEnd(_ text: String) -> String.Index? {
        var depth = 0
        var quoted = false
        for index in text.indices {
            switch text[index] {
            case "\"": quoted.toggle()
            case "[" where !quoted: depth += 1
            case "]" where !quoted: depth -= 1
            case ":" where !quoted && depth == 0: return index
            default: break
            }
        }
        return nil
    }
}

extension String {
    fileprivate var trimmingTrailingWhitespace: String {
        var text = self
        while text.last?.isWhitespace == true { text.removeLast() }
        return text
    }
}
