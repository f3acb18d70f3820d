import CompressNIO
import Histogram
import NIOCore
import SocketIOProtocol

/// HdrHistogram's interval log (`.hlog`, format 1.3), the files the HdrHistogram tools read and
/// `siotap load merge` adds up: each line a histogram in HdrHistogram's compressed V2 encoding
/// (zlib over ZigZag LEB128 counts, zero runs as negative lengths, base64: `HISTF…`), tagged by
/// what it times (`Tag=ack:chat message`). A worker's counters (users, errors, events received)
/// ride in a comment line (`#[siotap: {…}]`), which the tools skip.
public enum HistogramLog {
    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    // MARK: One histogram

    static let encodingCookie: UInt32 = 0x1C84_9313
    static let compressedCookie: UInt32 = 0x1C84_9314

    /// The histogram as HdrHistogram's compressed V2 encoding, in base64.
    public static func encode(_ histogram: LoadMetrics.Latencies) -> String {
        let shape = Shape()
        var counts: [UInt64] = []
        if histogram.totalCount > 0 {
            counts = [UInt64](repeating: 0, count: shape.index(of: histogram.maxRecorded) + 1)
            for value in histogram.recordedValues() {
                counts[shape.index(of: value.value)] += UInt64(value.count)
            }
        }
        var payload: [UInt8] = []
        var index = 0
        while index < counts.count {
            let count = counts[index]
            index += 1
            var zeros = 0
            if count == 0 {
                zeros = 1
                while index < counts.count, counts[index] == 0 {
                    zeros += 1
                    index += 1
                }
            }
            writeZigZag(zeros > 1 ? -Int64(zeros) : Int64(count), to: &payload)
        }
        return envelope(payload, shape: shape)
    }

    /// Counts, already written as ZigZag LEB128, in the V2 header, compressed, in base64 (for the
    /// tests and the fuzzer, which write counts no histogram would).
    package static func envelope(_ payload: [UInt8]) -> String { envelope(payload, shape: Shape()) }

    static func envelope(_ payload: [UInt8], shape: Shape) -> String {
        var encoded: [UInt8] = []
        append(encodingCookie, to: &encoded)
        append(UInt32(payload.count), to: &encoded)
        append(UInt32(0), to: &encoded)  // normalizing index offset
        append(UInt32(shape.digits), to: &encoded)
        append(UInt64(shape.lowest), to: &encoded)
        append(UInt64(shape.highest), to: &encoded)
        append((1.0 as Double).bitPattern, to: &encoded)  // integer to double conversion ratio
        encoded += payload
        var input = ByteBuffer(bytes: encoded)
        let compressed = (try? input.compress(with: .zlib())).map { Array($0.readableBytesView) } ?? []
        var out: [UInt8] = []
        append(compressedCookie, to: &out)
        append(UInt32(compressed.count), to: &out)
        return Base64.encode(out + compressed)
    }

    /// The most values one histogram may count (2^40, a trillion): logs added up stay far from overflowing.
    static let largestCount: UInt64 = 1 << 40
    /// The most the values of the histograms a merge reads may add up to.
    static let largestWeight: UInt64 = 1 << 62

    /// A histogram from its compressed V2 encoding (any the HdrHistogram libraries write with
    /// lowest discernible value 1), added into one of siotap's shape.
    public static func decode(_ text: String) throws(Invalid) -> LoadMetrics.Latencies {
        try decodeWeighted(text).histogram
    }

    /// The histogram, and the sum of its values (HdrHistogram's iterators add values up in 64
    /// bits: a stranger's counts of hour-long latencies must not take that past 2^62).
    static func decodeWeighted(_ text: String) throws(Invalid) -> (histogram: LoadMetrics.Latencies, weight: UInt64) {
        guard let bytes = Base64.decode(text), bytes.count >= 8, read32(bytes, 0) == compressedCookie else {
            throw Invalid(description: "not a compressed HdrHistogram (HISTF…)")
        }
        let length = Int(read32(bytes, 4))
        guard length <= bytes.count - 8 else { throw Invalid(description: "a histogram cut short") }
        var input = ByteBuffer(bytes: bytes[8..<(8 + length)])
        guard let inflated = try? input.decompress(with: .zlib(), maxSize: 64 << 20) else { throw Invalid(description: "a histogram that does not inflate") }
        let encoded = Array(inflated.readableBytesView)
        guard encoded.count >= 40, read32(encoded, 0) & 0xFFFF_FF00 == encodingCookie & 0xFFFF_FF00 else {
            throw Invalid(description: "not an HdrHistogram V2 encoding")
        }
        let payloadLength = Int(read32(encoded, 4))
        let digits = Int(read32(encoded, 12))
        let lowest = read64(encoded, 16)
        guard payloadLength <= encoded.count - 40, lowest == 1, (1...5).contains(digits) else {
            throw Invalid(description: "a histogram siotap cannot read (lowest discernible value \(lowest), \(digits) digits)")
        }
        let shape = Shape(digits: digits)
        var histogram = LoadMetrics.histogram()
        var position = 40
        var index = 0
        let end = 40 + payloadLength
        // A stranger's log may say anything: no index past the last bucket, no count so large
        // that adding logs up overflows.
        let lastIndex = shape.index(of: shape.highest)
        var total: UInt64 = 0
        var weight: UInt64 = 0
        while position < end {
            guard let value = readZigZag(encoded, &position) else { throw Invalid(description: "a histogram's counts are cut short") }
            if value < 0 {
                guard value > -Int64(lastIndex) - 1 else { throw Invalid(description: "a histogram's counts run past its range") }
                index += Int(-value)
            } else {
                guard index <= lastIndex else { throw Invalid(description: "a histogram's counts run past its range") }
                if value > 0 {
                    total += UInt64(value)
                    guard total <= largestCount else { throw Invalid(description: "a histogram counts more than \(largestCount) values") }
                    let recorded = min(shape.value(at: index), histogram.highestTrackableValue)
                    let (product, overflow) = recorded.multipliedReportingOverflow(by: UInt64(value))
                    guard !overflow, product <= largestWeight - weight else { throw Invalid(description: "a histogram's values add up past 2^62") }
                    weight += product
                    guard histogram.record(recorded, count: UInt64(value)) else { throw Invalid(description: "a count out of range") }
                }
                index += 1
            }
        }
        return (histogram, weight)
    }

    /// HdrHistogram's layout of counts for lowest discernible value 1 (unit magnitude 0).
    struct Shape {
        var digits = 3
        var lowest: UInt64 = 1
        var highest: UInt64 = 3_600_000_000

        var subBucketCountMagnitude: Int {
            var magnitude = 0
            while (1 << magnitude) < 2 * Int(pow10(digits)) { magnitude += 1 }
            return magnitude
        }

        var halfMagnitude: Int { max(subBucketCountMagnitude, 1) - 1 }
        var halfCount: Int { 1 << halfMagnitude }

        func index(of value: UInt64) -> Int {
            let mask = UInt64((1 << subBucketCountMagnitude) - 1)
            let bucket = (64 - subBucketCountMagnitude) - (value | mask).leadingZeroBitCount
            let subBucket = Int(value >> UInt64(bucket))
            return ((bucket + 1) << halfMagnitude) + (subBucket - halfCount)
        }

        func value(at index: Int) -> UInt64 {
            var bucket = (index >> halfMagnitude) - 1
            var subBucket = (index & (halfCount - 1)) + halfCount
            if bucket < 0 {
                subBucket -= halfCount
                bucket = 0
            }
            return UInt64(subBucket) << UInt64(bucket)
        }

        private func pow10(_ n: Int) -> UInt64 { (0..<n).reduce(1) { result, _ in result * 10 } }
    }

    // MARK: Bytes

    static func append(_ value: UInt32, to out: inout [UInt8]) {
        for shift in stride(from: 24, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    static func append(_ value: UInt64, to out: inout [UInt8]) {
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    static func read32(_ bytes: some Collection<UInt8>, _ offset: Int) -> UInt32 {
        let start = bytes.index(bytes.startIndex, offsetBy: offset)
        return bytes[start..<bytes.index(start, offsetBy: 4)].reduce(0) { $0 << 8 | UInt32($1) }
    }

    static func read64(_ bytes: [UInt8], _ offset: Int) -> UInt64 {
        bytes[offset..<(offset + 8)].reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// HdrHistogram's ZigZag LEB128: seven bits a byte, the ninth byte (if any) whole.
    package static func writeZigZag(_ value: Int64, to out: inout [UInt8]) {
        var rest = UInt64(bitPattern: (value << 1) ^ (value >> 63))
        for _ in 0..<8 {
            if rest < 0x80 {
                out.append(UInt8(rest))
                return
            }
            out.append(UInt8(rest & 0x7F) | 0x80)
            rest >>= 7
        }
        out.append(UInt8(truncatingIfNeeded: rest))
    }

    static func readZigZag(_ bytes: [UInt8], _ position: inout Int) -> Int64? {
        var result: UInt64 = 0
        for index in 0..<9 {
            guard position < bytes.count else { return nil }
            let byte = bytes[position]
            position += 1
            if index == 8 {
                result |= UInt64(byte) << 56
                break
            }
            result |= UInt64(byte & 0x7F) << UInt64(7 * index)
            if byte & 0x80 == 0 { break }
        }
        return Int64(bitPattern: result >> 1) ^ -Int64(bitPattern: result & 1)
    }
}

extension HistogramLog {
    /// A run's histograms as an interval log: one interval, the run, per tag; the counters in a
    /// comment line.
    public static func write(_ snapshot: LoadMetrics.Snapshot, start: Double, duration: Double, memory: (peakKB: Int, baselineKB: Int), worker: String) -> String {
        func fixed(_ value: Double) -> String {
            let thousandths = Int((value * 1000).rounded())
            let fraction = String(abs(thousandths) % 1000)
            return "\(thousandths / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
        }
        var lines = [
            "#[siotap load \(worker)]",
            "#[StartTime: \(fixed(start)) (seconds since epoch), \(RFC3339.format(secondsSince1970: start, fractionDigits: 0))]",
            "#[siotap: \(counters(snapshot, duration: duration, memory: memory).jsonText)]",
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"",
        ]
        var tagged: [(String, LoadMetrics.Latencies)] = []
        if snapshot.connect.totalCount > 0 { tagged.append(("connect", snapshot.connect)) }
        tagged += snapshot.acks.sorted { $0.key < $1.key }.map { ("ack:\($0.key)", $0.value) }
        tagged += snapshot.events.sorted { $0.key < $1.key }.map { ("event:\($0.key)", $0.value) }
        for (tag, histogram) in tagged {
            // Tags may not hold commas or spaces: those become underscores, as the tools expect.
            let safe = String(tag.map { $0 == "," || $0 == " " ? "_" : $0 })
            lines.append("Tag=\(safe),\(fixed(0)),\(fixed(duration)),\(fixed(Double(histogram.maxRecorded) / 1000)),\(encode(histogram))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func counters(_ snapshot: LoadMetrics.Snapshot, duration: Double, memory: (peakKB: Int, baselineKB: Int)) -> JSONValue {
        func object(_ pairs: [(String, JSONValue)]) -> JSONValue { .object(JSONObject(pairs.map { .init(key: JSONString($0.0), value: $0.1) })) }
        func int(_ value: Int) -> JSONValue { .number(JSONNumber(value)) }
        return object([
            ("started", int(snapshot.started)), ("peak", int(snapshot.peakConnected)), ("completed", int(snapshot.completed)),
            ("duration_s", JSONNumber(duration).map(JSONValue.number) ?? .null),
            ("received", object(snapshot.received.sorted { $0.key < $1.key }.map { ($0.key, int($0.value)) })),
            ("errors", object(snapshot.errors.sorted { $0.key.rawValue < $1.key.rawValue }.map { ($0.key.rawValue, int($0.value)) })),
            ("names", object((snapshot.acks.keys.map { ("ack:\($0)", $0) } + snapshot.events.keys.map { ("event:\($0)", $0) }).sorted { $0.0 < $1.0 }.map { ($0.0, .string(JSONString($0.1))) })),
            ("peak_rss_kb", int(memory.peakKB)), ("baseline_rss_kb", int(memory.baselineKB)),
        ])
    }

    /// What several workers' logs add up to: histograms by tag summed, counters summed (peaks
    /// too: the workers ran at once), the longest duration.
    public struct Merged: Sendable {
        public var snapshot = LoadMetrics.Snapshot()
        public var duration = 0.0
        public var memory = (peakKB: 0, baselineKB: 0)
        public var files = 0
    }

    /// Intervals a merge adds up, at most (each histogram is decoded and added: a trillion counts
    /// each would still not overflow a total).
    static let largestIntervalCount = 1 << 20

    public static func merge(_ logs: [(name: String, text: String)]) throws(Invalid) -> Merged {
        var merged = Merged()
        var intervals = 0
        var totalWeight: UInt64 = 0
        for (name, text) in logs {
            var names: [String: String] = [:]
            var sawCounters = false
            for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
                if line.hasPrefix("#[siotap: "), line.hasSuffix("]") {
                    guard let counters = try? JSONValue.parse(String(line.dropFirst("#[siotap: ".count).dropLast())) else {
                        throw Invalid(description: "\(name): its siotap line is not JSON")
                    }
                    sawCounters = true
                    add(counters, to: &merged)
                    for member in counters["names"]?.objectValue?.members ?? [] { names[member.key.value] = member.value.stringValue }
                    continue
                }
                if line.hasPrefix("#") || line.hasPrefix("\"StartTimestamp\"") { continue }
                let fields = line.split(separator: ",", omittingEmptySubsequences: false)
                guard fields.count >= 4 else { throw Invalid(description: "\(name): not an interval line: \(line.prefix(80))") }
                var tag = ""
                var rest = fields[...]
                if fields[0].hasPrefix("Tag=") {
                    tag = String(fields[0].dropFirst(4))
                    rest = fields.dropFirst()
                }
                guard rest.count == 4, let (histogram, weight) = try? decodeWeighted(String(rest.last!)) else {
                    throw Invalid(description: "\(name): an interval's histogram does not read: \(line.prefix(80))")
                }
                guard weight <= largestWeight - totalWeight else { throw Invalid(description: "\(name): the logs' values add up past 2^62") }
                totalWeight += weight
                intervals += 1
                guard intervals <= largestIntervalCount else { throw Invalid(description: "more than \(largestIntervalCount) intervals in the logs") }
                let label = names[tag] ?? String(tag.split(separator: ":", maxSplits: 1).last ?? "")
                if tag == "connect" {
                    merged.snapshot.connect.add(histogram)
                } else if tag.hasPrefix("ack:") {
                    let key = LoadMetrics.key(label, in: merged.snapshot.acks)
                    if merged.snapshot.acks[key] == nil { merged.snapshot.acks[key] = LoadMetrics.histogram() }
                    merged.snapshot.acks[key]!.add(histogram)
                } else {
                    let key = LoadMetrics.key(label, in: merged.snapshot.events)
                    if merged.snapshot.events[key] == nil { merged.snapshot.events[key] = LoadMetrics.histogram() }
                    merged.snapshot.events[key]!.add(histogram)
                }
            }
            guard sawCounters else { throw Invalid(description: "\(name): not a log siotap load wrote (no #[siotap: …] line)") }
            merged.files += 1
        }
        return merged
    }

    private static func add(_ counters: JSONValue, to merged: inout Merged) {
        // Counts from a stranger's log are held to 0...2^40, so that sums cannot overflow.
        func count(_ value: JSONValue?) -> Int { value?.numberValue.flatMap { Int($0.literal) }.map { min(max($0, 0), 1 << 40) } ?? 0 }
        func int(_ key: String) -> Int { count(counters[key]) }
        merged.snapshot.started += int("started")
        merged.snapshot.peakConnected += int("peak")
        merged.snapshot.completed += int("completed")
        merged.duration = max(merged.duration, min(counters["duration_s"]?.numberValue?.doubleValue ?? 0, 1e9))
        merged.memory.peakKB += int("peak_rss_kb")
        merged.memory.baselineKB += int("baseline_rss_kb")
        for member in counters["received"]?.objectValue?.members ?? [] {
            merged.snapshot.received[LoadMetrics.key(member.key.value, in: merged.snapshot.received), default: 0] += count(member.value)
        }
        for member in counters["errors"]?.objectValue?.members ?? [] {
            guard let kind = LoadMetrics.ErrorKind(rawValue: member.key.value) else { continue }
            merged.snapshot.errors[kind, default: 0] += count(member.value)
        }
    }
}
