import TrafficCapture

/// One readable line per capture record, for people watching a terminal.
struct RecordView: Sendable {
    let style: Styling
    /// The terminal's width; arguments are shortened to fit.
    let width: Int

    /// The record's line, never wider than the terminal (cut with `…`, never wrapped);
    /// `answering`: for an ack, the event it answers.
    func line(_ record: CaptureRecord, answering: String? = nil) -> String {
        if case .diagnosis(let diagnosis) = record.body { return self.diagnosis(diagnosis, of: record) }
        return fit(text(record, answering: answering))
    }

    /// A diagnosis is read whole: its sentence wraps between words, under its first line.
    private func diagnosis(_ diagnosis: DiagnosisRecord, of record: CaptureRecord) -> String {
        let time = style.dim(String(record.ts.dropFirst(11).prefix(12)))
        let conn = record.conn.map { style.dim("[\($0)] ") } ?? ""
        let mark = diagnosis.severity == .error ? style.magenta(style.bold("⚑ \(diagnosis.code)")) : style.magenta("⚑ \(diagnosis.code)")
        let head = "\(time) \(conn)\(mark) "
        let indent = "    "
        var lines: [String] = []
        var current = head
        var currentLength = visibleLength(head)
        let room = width > 20 ? width : Int.max
        let words = (diagnosis.message + (diagnosis.docs.map { " " + $0 } ?? "")).split(separator: " ")
        for word in words {
            let length = word.count
            if currentLength + length > room, currentLength > indent.count {
                lines.append(current)
                current = indent
                currentLength = indent.count
            }
            let shown = word.hasPrefix("https://") ? style.dim(String(word)) : String(word)
            current += shown + " "
            currentLength += length + 1
        }
        lines.append(current)
        return lines.map { $0.hasSuffix(" ") ? String($0.dropLast()) : $0 }.joined(separator: "\n")
    }

    private func text(_ record: CaptureRecord, answering: String?) -> String {
        let time = style.dim(String(record.ts.dropFirst(11).prefix(12)))
        let conn = record.conn.map { style.dim("[\($0)] ") } ?? ""
        let prefix = "\(time) \(conn)"
        switch record.body {
        case .session(let session):
            // An imported WebSocket joined mid-stream has no URL (its pcap.no_handshake record says why).
            let url = session.url.isEmpty ? style.dim("(URL not captured)") : session.url
            return prefix + style.bold("session") + " EIO\(session.eio.rawValue) \(session.transport.rawValue) \(url)"
        case .engine(let engine):
            let text = prefix + arrow(engine.dir) + " " + style.dim("\(engine.transport.rawValue) engine \(engine.type.name)")
            guard let data = engine.data?.scalarText, !data.isEmpty else { return text }
            return text + " " + style.dim(shorten(data, room: max(16, width - visibleLength(text) - 1)))
        case .packet(let packet):
            var text = prefix + arrow(packet.dir) + " " + style.dim(packet.transport.rawValue) + " "
            if packet.nsp != "/" { text += style.magenta(packet.nsp) + " " }
            if let event = packet.event {
                text += style.bold(event)
            } else {
                text += style.cyan(packet.type.name)
            }
            if let id = packet.id { text += style.dim(" #\(id)") }
            if packet.type.isAck, let answering { text += " " + style.bold(answering) }
            if let latency = packet.latencyMilliseconds { text += style.dim(" (\(formatMilliseconds(latency)))") }
            var payload = ""
            if let args = packet.args { payload = JSONValue.array(args).jsonText }
            if let data = packet.data { payload = data.jsonText }
            if !payload.isEmpty { text += " " + shorten(payload, room: max(16, width - visibleLength(text) - 1)) }
            if let count = packet.attachments?.count { text += style.dim(" +\(count) binary") }
            return text
        case .jwt(let jwt):
            var text = prefix + style.yellow("JWT") + " \(jwt.source)"
            if let user = Self.user(jwt.claims) { text += " " + user }
            if let exp = jwt.exp {
                text += " exp \(exp)"
                if let left = jwt.expiresInSeconds { text += " (\(formatRemaining(left)))" }
            }
            switch jwt.verified {
            case true?: text += " " + style.green("✓ verified")
            case false?: text += " " + style.red("✗ \(jwt.reason ?? "not verified")")
            case nil: text += " " + style.dim("not verified (no key)")
            }
            return text
        case .close(let close):
            return prefix + style.bold("close") + " by \(close.by.rawValue): \(close.reason)"
        case .error(let error):
            let dir = error.dir.map { arrow($0) + " " } ?? ""
            return prefix + dir + style.red("error \(error.code)") + ": \(error.message)"
        case .info(let info):
            let dir = info.dir.map { arrow($0) + " " } ?? ""
            return prefix + dir + style.dim("info \(info.code): \(info.message)")
        case .fault(let fault):
            let dir = fault.dir.map { arrow($0) + " " } ?? ""
            var text = prefix + dir + style.yellow("fault \(fault.action.rawValue)")
            if let packet = fault.packet { text += style.dim(" #\(packet)") }
            if let delay = fault.delayMilliseconds { text += " \(formatMilliseconds(delay))" }
            if let detail = fault.detail { text += " " + detail }
            if let raw = fault.raw { text += " " + shorten(raw, room: max(16, width - visibleLength(text) - 1)) }
            return text + style.dim(" (\(fault.rule))")
        case .intervention(let intervention):
            var text = prefix + arrow(intervention.dir) + " " + style.cyan("\(intervention.action.rawValue) by \(intervention.by.rawValue)")
            if let packet = intervention.packet { text += style.dim(" #\(packet)") }
            if let breakpoint = intervention.breakpoint { text += style.dim(" (\(breakpoint))") }
            if let answers = intervention.answers { text += " answers #\(answers)" }
            if let held = intervention.heldMilliseconds { text += " held \(formatMilliseconds(held))" }
            if let detail = intervention.detail { text += " " + detail }
            if let raw = intervention.raw { text += " " + shorten(raw, room: max(16, width - visibleLength(text) - 1)) }
            return text
        case .diagnosis:
            return ""
        }
    }

    /// Who a token is for, naming the claims it read: `ada (sub 42)`, `ada (id 42)`, `sub=42`.
    static func user(_ claims: JSONValue) -> String? {
        let identity = ["sub", "id", "userId", "user_id"].lazy.compactMap { name in claims[name].map { (name, $0.scalarText) } }.first
        let name = ["name", "username", "preferred_username", "email"].lazy.compactMap { claims[$0]?.stringValue }.first
        switch (name, identity) {
        case let (name?, (claim, value)?): return "\(name) (\(claim) \(value))"
        case let (name?, nil): return name
        case let (nil, (claim, value)?): return "\(claim)=\(value)"
        default: return nil
        }
    }

    /// Cut to the terminal's width by what shows (ANSI escapes kept, colours reset after the cut).
    private func fit(_ text: String) -> String {
        guard width > 1, visibleLength(text) > width else { return text }
        var result = ""
        var shown = 0
        var inEscape = false
        for character in text {
            if character == "\u{1B}" {
                inEscape = true
            } else if inEscape {
                if character == "m" { inEscape = false }
            } else {
                guard shown < width - 1 else { break }
                shown += 1
            }
            result.append(character)
        }
        return result + "…" + (style.enabled ? "\u{1B}[0m" : "")
    }

    private func arrow(_ dir: Direction) -> String {
        dir == .clientToServer ? style.green("→") : style.blue("←")
    }

    private func shorten(_ text: String, room: Int) -> String {
        text.count <= room ? text : String(text.prefix(room - 1)) + "…"
    }

    /// Length without ANSI escapes.
    private func visibleLength(_ text: String) -> Int {
        var count = 0
        var inEscape = false
        for character in text {
            if character == "\u{1B}" { inEscape = true } else if inEscape { if character == "m" { inEscape = false } } else { count += 1 }
        }
        return count
    }
}

func formatMilliseconds(_ value: Double) -> String {
    value < 10 ? "\((value * 100).rounded() / 100) ms" : "\(Int(value.rounded())) ms"
}

/// `in 4m12s` or `expired 3h02m ago`.
func formatRemaining(_ seconds: Double) -> String {
    let magnitude = Int(abs(seconds).rounded())
    let text: String
    switch magnitude {
    case ..<60: text = "\(magnitude)s"
    case ..<3600: text = "\(magnitude / 60)m\(pad2(magnitude % 60))s"
    case ..<86_400: text = "\(magnitude / 3600)h\(pad2(magnitude / 60 % 60))m"
    default: text = "\(magnitude / 86_400)d\(pad2(magnitude / 3600 % 24))h"
    }
    return seconds >= 0 ? "in \(text)" : "expired \(text) ago"
}

private func pad2(_ value: Int) -> String { value < 10 ? "0\(value)" : String(value) }
