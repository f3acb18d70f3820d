import Histogram
import TrafficReplay

/// One second of a run, for the report's plots.
public struct LoadSample: Sendable, Hashable {
    /// Seconds since the run began.
    public var time: Double
    public var connected: Int
    /// Acks and caused events timed in that second.
    public var timed: Int
    /// That second's latencies, in milliseconds (nil when nothing was timed).
    public var p50: Double?
    public var p99: Double?
    /// Errors so far.
    public var errors: Int

    public init(time: Double, connected: Int, timed: Int, p50: Double?, p99: Double?, errors: Int) {
        self.time = time
        self.connected = connected
        self.timed = timed
        self.p50 = p50
        self.p99 = p99
        self.errors = errors
    }
}

extension LoadReport {
    /// `--report FILE.html`: one page, nothing fetched from elsewhere and no script: the plots are
    /// SVG drawn here (latency percentiles over time, throughput, connected users, errors), then
    /// the tables.
    public static func html(
        _ snapshot: LoadMetrics.Snapshot, samples: [LoadSample], duration: Double, memory: (peakKB: Int, baselineKB: Int), title: String, broken: [String]
    ) -> String {
        let latency = chart(
            "Latency over time (ms)",
            [("p50", "#0b6bcb", samples.compactMap { sample in sample.p50.map { (sample.time, $0) } }),
             ("p99", "#c0262d", samples.compactMap { sample in sample.p99.map { (sample.time, $0) } })]
        )
        let throughput = chart("Timed acks and events a second", [("per second", "#1a7f37", samples.map { ($0.time, Double($0.timed)) })])
        let users = chart("Connected users", [("connected", "#8a4b00", samples.map { ($0.time, Double($0.connected)) })])
        let errors = chart("Errors so far", [("errors", "#c0262d", samples.map { ($0.time, Double($0.errors)) })])
        var rows = ""
        func row(_ label: String, _ histogram: LoadMetrics.Latencies) {
            rows += "<tr><th>\(escape(label))</th><td>\(histogram.totalCount)</td>"
                + columns.map { name, _ in "<td>\(milliseconds(value(histogram, name)))</td>" }.joined() + "</tr>\n"
        }
        if snapshot.connect.totalCount > 0 { row("connect", snapshot.connect) }
        for (name, histogram) in snapshot.acks.sorted(by: { $0.key < $1.key }) { row("ack of \(name)", histogram) }
        for (name, histogram) in snapshot.events.sorted(by: { $0.key < $1.key }) { row(name, histogram) }
        if snapshot.all.totalCount > 0 { row("all", snapshot.all) }
        let errorText = LoadMetrics.ErrorKind.allCases.compactMap { kind in snapshot.errors[kind].map { "\(kind.rawValue) \($0)" } }.joined(separator: ", ")
        let received = snapshot.received.sorted { $0.key < $1.key }.map { "\(escape($0.key)) \($0.value)" }.joined(separator: ", ")
        let perUser = snapshot.peakConnected > 0 ? Double(max(0, memory.peakKB - memory.baselineKB)) / Double(snapshot.peakConnected) : 0
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
            <style>
            body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2125; }
            h1 { font-size: 18px; } h2 { font-size: 15px; margin: 18px 0 4px; }
            .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 12px; }
            svg { width: 100%; height: auto; border: 1px solid #e3e6ea; border-radius: 4px; }
            table { border-collapse: collapse; margin-top: 8px; } th, td { padding: 3px 10px; text-align: right; border-bottom: 1px solid #e3e6ea; }
            th:first-child { text-align: left; } .bad { color: #c0262d; font-weight: 600; }
            </style></head><body>
            <h1>\(escape(title))</h1>
            <p>\(snapshot.started) users started, \(snapshot.completed) played to the end, peak \(snapshot.peakConnected) connected, in \(decimal(duration, digits: 1)) s.
            Errors: \(errorText.isEmpty ? "none" : escape(errorText)). Peak RSS \(decimal(Double(memory.peakKB) / 1024, digits: 1)) MB, \(decimal(perUser, digits: 1)) kB per connected user.</p>
            \(broken.isEmpty ? "" : "<p class=\"bad\">--fail-if broken: \(escape(broken.joined(separator: ", ")))</p>")
            <div class="charts">
            \(latency)
            \(throughput)
            \(users)
            \(errors)
            </div>
            <h2>Latency (ms)</h2>
            <table><tr><th></th><th>count</th>\(columns.map { "<th>\($0.0)</th>" }.joined())</tr>
            \(rows)</table>
            <h2>Received</h2><p>\(received.isEmpty ? "nothing" : received)</p>
            </body></html>

            """
    }

    /// A line chart as SVG: each series a polyline over the run's seconds, axes with their ranges.
    static func chart(_ title: String, _ series: [(name: String, color: String, points: [(Double, Double)])]) -> String {
        let (width, height, left, bottom, top, right) = (600.0, 220.0, 56.0, 28.0, 26.0, 12.0)
        let all = series.flatMap(\.points)
        let maxX = max(all.map(\.0).max() ?? 1, 1)
        let highest = all.map(\.1).max() ?? 0
        let maxY = niceCeiling(highest > 0 ? highest : 1)
        func x(_ value: Double) -> String { decimal(left + (width - left - right) * value / maxX, digits: 1) }
        func y(_ value: Double) -> String { decimal(height - bottom - (height - bottom - top) * value / maxY, digits: 1) }
        var svg = "<svg viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"\(escape(title))\">"
        svg += "<text x=\"\(Int(left))\" y=\"16\" font-size=\"13\" font-weight=\"600\">\(escape(title))</text>"
        svg += "<line x1=\"\(Int(left))\" y1=\"\(y(0))\" x2=\"\(Int(width - right))\" y2=\"\(y(0))\" stroke=\"#8d96a0\"/>"
        svg += "<line x1=\"\(Int(left))\" y1=\"\(y(0))\" x2=\"\(Int(left))\" y2=\"\(y(maxY))\" stroke=\"#8d96a0\"/>"
        for fraction in [0.0, 0.5, 1.0] {
            svg += "<text x=\"\(Int(left) - 4)\" y=\"\(y(maxY * fraction))\" font-size=\"11\" text-anchor=\"end\" dominant-baseline=\"middle\">\(decimal(maxY * fraction, digits: 2))</text>"
        }
        svg += "<text x=\"\(Int(width - right))\" y=\"\(Int(height) - 8)\" font-size=\"11\" text-anchor=\"end\">\(decimal(maxX, digits: 1)) s</text>"
        svg += "<text x=\"\(Int(left))\" y=\"\(Int(height) - 8)\" font-size=\"11\">0 s</text>"
        for (index, line) in series.enumerated() {
            let points = line.points.map { "\(x($0.0)),\(y($0.1))" }.joined(separator: " ")
            svg += "<polyline fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"1.5\" points=\"\(points)\"><title>\(escape(line.name))</title></polyline>"
            svg += "<text x=\"\(Int(width - right) - 70 * (series.count - index))\" y=\"16\" font-size=\"11\" fill=\"\(line.color)\">\(escape(line.name))</text>"
        }
        return svg + "</svg>"
    }

    /// 1, 2 or 5 times a power of ten, at or above `value`.
    static func niceCeiling(_ value: Double) -> Double {
        var power = 1e-6
        while power * 10 <= value { power *= 10 }
        for step in [1.0, 2, 5, 10] where power * step >= value { return power * step }
        return power * 10
    }

    static func escape(_ text: String) -> String { Markup.escape(text) }
}
