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

    /// Where two values differ, as paths. Numbers compare by value (`1.0` is `1`), strings by
    /// their decoded text, objects by key whatever the order.
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
            return a.literal == b.literal || (a.doubleValue != nil && a.doubleValue == b.doubleValue) ? [] : [(path, expected, actual)]
        default:
            return expected == actual ? [] : [(path, expected, actual)]
        }
    }
}
