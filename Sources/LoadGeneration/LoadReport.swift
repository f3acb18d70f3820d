import Histogram
public import SocketIOProtocol

/// `--fail-if 'p99>200ms,errors>0.1%'`: thresholds a run must stay within (CI's exit 1).
///
/// Terms, all checked: `p50`, `p90`, `p99`, `p999`, `max` (every ack and caused event together),
/// `connect_p50`, `connect_p99`, `connect_max`, each against a duration (`200ms`, `1.5s`, `500us`);
/// `errors` against a count or a percentage of the run's operations (sessions opened, acks and
/// events waited for). Operators: `>`, `>=`, `<`, `<=`.
public struct FailCondition: Sendable, Hashable, CustomStringConvertible {
    public struct Term: Sendable, Hashable {
        public var metric: String
        public var comparison: String
        /// Microseconds for latencies; a count, or a percentage when `percent`.
        public var value: Double
        public var percent: Bool
        public var text: String
    }

    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    static let latencies: Set<String> = ["p50", "p90", "p99", "p999", "max", "connect_p50", "connect_p99", "connect_max"]

    public var terms: [Term] = []

    public init(_ text: String) throws(Invalid) {
        for part in text.split(separator: ",").map({ String($0).filter { !$0.isWhitespace } }) where !part.isEmpty {
            guard let start = part.firstIndex(where: { "<>=".contains($0) }) else {
                throw Invalid(description: "\(part): a term is METRIC>VALUE (p99>200ms, errors>0.1%)")
            }
            var comparison = String(part[start])
            var rest = part[part.index(after: start)...]
            if rest.first == "=" {
                comparison += "="
                rest = rest.dropFirst()
            }
            let metric = String(part[..<start])
            guard [">", ">=", "<", "<="].contains(comparison) else { throw Invalid(description: "\(part): the comparison is >, >=, < or <=") }
            if Self.latencies.contains(metric) {
                guard let micros = Self.microseconds(String(rest)) else { throw Invalid(description: "\(part): \(rest) is not a duration (200ms, 1.5s, 500us)") }
                terms.append(Term(metric: metric, comparison: comparison, value: micros, percent: false, text: part))
            } else if metric == "errors" {
                let percent = rest.hasSuffix("%")
                guard let value = Double(percent ? rest.dropLast() : rest), value >= 0 else { throw Invalid(description: "\(part): errors are a count or a percentage") }
                terms.append(Term(metric: metric, comparison: comparison, value: value, percent: percent, text: part))
            } else {
                throw Invalid(description: "\(part): unknown metric \(metric) (\((Self.latencies.sorted() + ["errors"]).joined(separator: ", ")))")
            }
        }
        guard !terms.isEmpty else { throw Invalid(description: "--fail-if needs a term (p99>200ms, errors>0.1%)") }
    }

    public var description: String { terms.map(\.text).joined(separator: ",") }

    static func microseconds(_ text: String) -> Double? {
        for (unit, scale) in [("us", 1.0), ("ms", 1000.0), ("s", 1_000_000.0)] where text.hasSuffix(unit) {
            guard let value = Double(text.dropLast(unit.count)), value >= 0 else { return nil }
            return value * scale
        }
        return nil
    }

    /// The terms the run broke, each with the value it had.
    public func broken(by snapshot: LoadMetrics.Snapshot) -> [String] {
        let all = snapshot.all
        return terms.compactMap { term in
            let actual: Double
            let shown: String
            switch term.metric {
            case "errors":
                let count = Double(snapshot.errorCount)
                actual = term.percent ? (snapshot.operations == 0 ? 0 : 100 * count / Double(snapshot.operations)) : count
                shown = term.percent ? "\(LoadReport.decimal(actual, digits: 3))%" : "\(Int(count))"
            default:
                let histogram = term.metric.hasPrefix("connect_") ? snapshot.connect : all
                let name = term.metric.hasPrefix("connect_") ? String(term.metric.dropFirst("connect_".count)) : term.metric
                guard histogram.totalCount > 0 else { return nil }
                actual = Double(LoadReport.value(histogram, name))
                shown = LoadReport.milliseconds(UInt64(actual)) + " ms"
            }
            let broken = switch term.comparison {
            case ">": actual > term.value
            case ">=": actual >= term.value
            case "<": actual < term.value
            default: actual <= term.value
            }
            return broken ? "\(term.text) (was \(shown))" : nil
        }
    }
}

/// How busy each side was over a run, in cores (CPU seconds over the run's seconds).
public struct CPUUse: Sendable {
    public var load: Double
    /// The server's, when it listens on this machine and /proc shows its process.
    public var server: Double?
    public var serverPID: Int32?
    public var machineCores: Int

    public init(load: Double, server: Double?, serverPID: Int32?, machineCores: Int) {
        self.load = load
        self.server = server
        self.serverPID = serverPID
        self.machineCores = machineCores
    }

    /// Which side worked harder: `server` or `load` (nil without the server's figure).
    public var busier: String? { server.map { $0 >= load ? "server" : "load" } }

    var sentence: String {
        var text = "siotap load used \(LoadReport.decimal(load, digits: 2)) cores"
        if let server, let serverPID {
            text += ", the server (pid \(serverPID)) \(LoadReport.decimal(server, digits: 2)), of \(machineCores) on this machine: "
                + (busier == "server" ? "the server was the busier side" : "siotap load was the busier side, so the server may have had more to give")
        } else {
            text += " of \(machineCores) (the server's use is not known: it is not a process of this machine that /proc shows)"
        }
        return text
    }
}

/// A run's figures, for people (a table) and machines (one JSON object).
public enum LoadReport {
    static let columns: [(String, String)] = [("p50", "p50_ms"), ("p90", "p90_ms"), ("p99", "p99_ms"), ("p999", "p999_ms"), ("max", "max_ms")]

    static func value(_ histogram: LoadMetrics.Latencies, _ name: String) -> UInt64 {
        switch name {
        case "p50": histogram.valueAtPercentile(50)
        case "p90": histogram.valueAtPercentile(90)
        case "p99": histogram.valueAtPercentile(99)
        case "p999": histogram.valueAtPercentile(99.9)
        default: histogram.maxRecorded
        }
    }

    static func milliseconds(_ micros: UInt64) -> String { decimal(Double(micros) / 1000, digits: 3) }

    static func decimal(_ value: Double, digits: Int) -> String {
        let scale = Double((0..<digits).reduce(1) { result, _ in result * 10 })
        let rounded = (value * scale).rounded() / scale
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }

    static func latencyJSON(_ histogram: LoadMetrics.Latencies) -> JSONValue {
        var members: [JSONObject.Member] = [.init(key: JSONString("count"), value: .number(JSONNumber(histogram.totalCount)))]
        for (name, key) in columns {
            members.append(.init(key: JSONString(key), value: number(Double(value(histogram, name)) / 1000)))
        }
        return .object(JSONObject(members))
    }

    static func number(_ value: Double) -> JSONValue {
        JSONNumber(value).map(JSONValue.number) ?? .null
    }

    /// What `--json` prints: every figure of the run.
    public static func json(
        _ snapshot: LoadMetrics.Snapshot, duration: Double, memory: (peakKB: Int, baselineKB: Int), broken: [String], cpu: CPUUse? = nil
    ) -> JSONValue {
        func object(_ pairs: [(String, JSONValue)]) -> JSONValue { .object(JSONObject(pairs.map { .init(key: JSONString($0.0), value: $0.1) })) }
        let perUser = snapshot.peakConnected > 0 ? Double(max(0, memory.peakKB - memory.baselineKB)) / Double(snapshot.peakConnected) : 0
        return object([
            ("users", object([
                ("started", .number(JSONNumber(snapshot.started))), ("peak", .number(JSONNumber(snapshot.peakConnected))),
                ("completed", .number(JSONNumber(snapshot.completed))),
            ])),
            ("duration_s", number((duration * 1000).rounded() / 1000)),
            ("connect_ms", latencyJSON(snapshot.connect)),
            ("acks", object(snapshot.acks.sorted { $0.key < $1.key }.map { ($0.key, latencyJSON($0.value)) })),
            ("events", object(snapshot.events.sorted { $0.key < $1.key }.map { ($0.key, latencyJSON($0.value)) })),
            ("all_ms", latencyJSON(snapshot.all)),
            ("received", object(snapshot.received.sorted { $0.key < $1.key }.map { ($0.key, .number(JSONNumber($0.value))) })),
            ("errors", object(LoadMetrics.ErrorKind.allCases.compactMap { kind in snapshot.errors[kind].map { (kind.rawValue, .number(JSONNumber($0))) } })),
            ("memory", object([("peak_rss_mb", number((Double(memory.peakKB) / 1024 * 10).rounded() / 10)), ("per_user_kb", number((perUser * 10).rounded() / 10))])),
            ("cpu", cpu.map { cpu in
                object([
                    ("load_cores", number((cpu.load * 1000).rounded() / 1000)), ("server_cores", cpu.server.map { number(($0 * 1000).rounded() / 1000) } ?? .null),
                    ("server_pid", cpu.serverPID.map { .number(JSONNumber(Int($0))) } ?? .null),
                    ("machine_cores", .number(JSONNumber(cpu.machineCores))), ("busier", cpu.busier.map { .string(JSONString($0)) } ?? .null),
                ])
            } ?? .null),
            ("failed", .array(broken.map { .string(JSONString($0)) })),
        ])
    }

    /// The summary table printed at the end.
    public static func table(_ snapshot: LoadMetrics.Snapshot, duration: Double, memory: (peakKB: Int, baselineKB: Int), cpu: CPUUse? = nil) -> String {
        var lines: [String] = []
        lines.append("users      \(snapshot.started) started, \(snapshot.completed) played to the end, peak \(snapshot.peakConnected) connected, in \(decimal(duration, digits: 1)) s")
        func row(_ label: String, _ histogram: LoadMetrics.Latencies) -> String {
            let cells = columns.map { name, _ in "\(name) \(milliseconds(value(histogram, name)))" }.joined(separator: "  ")
            return label + String(repeating: " ", count: max(0, 24 - label.count)) + " \(String(histogram.totalCount).leftPadded(7))  " + cells
        }
        lines.append("latency (ms)               count")
        if snapshot.connect.totalCount > 0 { lines.append(row("  connect", snapshot.connect)) }
        for (name, histogram) in snapshot.acks.sorted(by: { $0.key < $1.key }) { lines.append(row("  ack of \(name)", histogram)) }
        for (name, histogram) in snapshot.events.sorted(by: { $0.key < $1.key }) { lines.append(row("  \(name)", histogram)) }
        if snapshot.all.totalCount > 0 { lines.append(row("  all", snapshot.all)) }
        let received = snapshot.received.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        lines.append("received   \(received.isEmpty ? "nothing" : received)")
        let errors = LoadMetrics.ErrorKind.allCases.compactMap { kind in snapshot.errors[kind].map { "\(kind.rawValue) \($0)" } }
        lines.append("errors     \(errors.isEmpty ? "none" : errors.joined(separator: ", "))")
        let perUser = snapshot.peakConnected > 0 ? Double(max(0, memory.peakKB - memory.baselineKB)) / Double(snapshot.peakConnected) : 0
        lines.append("memory     peak RSS \(decimal(Double(memory.peakKB) / 1024, digits: 1)) MB, \(decimal(perUser, digits: 1)) kB per connected user")
        if let cpu { lines.append("cpu        \(cpu.sentence)") }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
