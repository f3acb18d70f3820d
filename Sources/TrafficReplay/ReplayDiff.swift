public import TrafficCapture

/// How one connection's server-to-client packets compare with the recorded ones.
public struct ConnectionDiff: Sendable {
    public struct Change: Sendable, Hashable {
        /// The recorded packet (its seq in the capture).
        public var seq: Int
        public var key: String
        /// A JSON path into the packet: `args[0].message`.
        public var path: String
        public var expected: JSONValue?
        public var actual: JSONValue?
    }

    public var conn: String
    public var matched = 0
    /// Recorded packets that never came: (seq, key, payload).
    public var missing: [(seq: Int, key: String, payload: JSONValue)] = []
    /// Packets that came and were not recorded.
    public var unexpected: [(key: String, payload: JSONValue)] = []
    public var changed: [Change] = []
    /// The event each recorded ack answers, by the ack's seq, to name it in reports.
    public var answered: [Int: String] = [:]

    /// A packet as a report names it: `ACK / message-with-ack`, `EVENT /chat hello`.
    public func label(_ seq: Int?, key: String) -> String {
        let trimmed = String(key.reversed().drop { $0 == " " }.reversed())
        guard let seq, let event = answered[seq] else { return trimmed }
        return "\(trimmed) \(event)"
    }

    public var isEqual: Bool { missing.isEmpty && unexpected.isEmpty && changed.isEmpty }

    /// Pairs expected and actual packets in order by key, then compares each pair's payload.
    public static func compare(conn: String, expected: [(seq: Int, packet: PacketRecord)], actual: [PacketRecord], normalizer: PacketNormalizer) -> ConnectionDiff {
        var diff = ConnectionDiff(conn: conn)
        var used = [Bool](repeating: false, count: actual.count)
        for (seq, recorded) in expected {
            let key = PacketNormalizer.key(recorded)
            guard let index = actual.indices.first(where: { !used[$0] && PacketNormalizer.key(actual[$0]) == key }) else {
                diff.missing.append((seq, key, normalizer.normalize(recorded)))
                continue
            }
            used[index] = true
            let changes = differences(normalizer.normalize(recorded), normalizer.normalize(actual[index]), path: "")
            if changes.isEmpty {
                diff.matched += 1
            } else {
                diff.changed += changes.map { Change(seq: seq, key: key, path: $0.path, expected: $0.expected, actual: $0.actual) }
            }
        }
        for (index, packet) in actual.enumerated() where !used[index] {
            diff.unexpected.append((PacketNormalizer.key(packet), normalizer.normalize(packet)))
        }
        return diff
    }

    /// Where two values differ, as paths. Numbers compare by exact decimal value (`1.0` is `1`,
    /// `1e2` is `100`; 2^53 + 1 is not 2^53, as it would be as doubles), strings by their decoded
    /// text, objects by key whatever the order.
    static func differences(_ expected: JSONValue?, _ actual: JSONValue?, path: String) -> [(path: String, expected: JSONValue?, actual: JSONValue?)] {
        switch (expected, actual) {
        case (.object(let a)?, .object(let b)?):
            var result: [(String, JSONValue?, JSONValue?)] = []
            var keys = a.keys
            for key in b.keys where !keys.contains(key) { keys.append(key) }
            for key in keys {
                result += differences(a[key], b[key], path: path.isEmpty ? key : "\(path).\(key)")
            }
            return result
        case (.array(let a)?, .array(let b)?):
            var result: [(String, JSONValue?, JSONValue?)] = []
            for index in 0..<max(a.count, b.count) {
                result += differences(index < a.count ? a[index] : nil, index < b.count ? b[index] : nil, path: "\(path)[\(index)]")
            }
            return result
        case (.number(let a)?, .number(let b)?):
            return a.literal == b.literal || (a.decimal != nil && a.decimal == b.decimal) ? [] : [(path, expected, actual)]
        default:
            return expected == actual ? [] : [(path, expected, actual)]
        }
    }
}

struct ExactDecimal: Equatable {
    var negative: Bool
    var digits: Substring
    var exponent: Int
}

extension JSONNumber {
    /// The number's exact value as sign, significant digits and exponent (`-1.50e1`: minus, "15",
    /// 0); zero is ("0", 0) whatever its sign. `nil` for an exponent too large to hold.
    var decimal: ExactDecimal? {
        let text = literal
        var rest = Substring(text)
        let negative = rest.first == "-"
        if negative { rest = rest.dropFirst() }
        var exponent = 0
        if let e = rest.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            guard let value = Int(rest[rest.index(after: e)...].drop { $0 == "+" }), abs(value) < 1 << 40 else { return nil }
            exponent = value
            rest = rest[..<e]
        }
        var digits = Substring(rest.filter { $0 != "." })
        if let dot = rest.firstIndex(of: ".") { exponent -= rest.distance(from: dot, to: rest.endIndex) - 1 }
        digits = digits.drop { $0 == "0" }
        while digits.last == "0" {
            digits = digits.dropLast()
            exponent += 1
        }
        return digits.isEmpty ? ExactDecimal(negative: false, digits: "0", exponent: 0) : ExactDecimal(negative: negative, digits: digits, exponent: exponent)
    }
}
