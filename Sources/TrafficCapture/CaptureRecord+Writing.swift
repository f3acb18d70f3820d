/// The JSON line of a record, written field by field into bytes. The proxy writes a line per
/// frame, and going through `Encodable` (a tree of values, then text) cost more than the relay
/// itself; this writes the same text, field for field in the same order as `encode(to:)`, which
/// a test holds it to.
extension CaptureRecord {
    /// The record's JSON text, UTF-8, without the newline.
    public var jsonBytes: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256)
        writeJSON(to: &bytes)
        return bytes
    }

    /// Appends the record's JSON text (a batch is written into one buffer, not a buffer a line).
    func writeJSON(to bytes: inout [UInt8]) {
        var fields = JSONFieldWriter()
        swap(&fields.out, &bytes)
        fields.open()
        fields.int("seq", seq)
        fields.string("ts", ts)
        fields.string("kind", kind.rawValue)
        fields.string("conn", conn)
        switch body {
        case .session(let record):
            fields.string("url", record.url)
            fields.string("path", record.path)
            fields.int("eio", record.eio.rawValue)
            fields.string("transport", record.transport.rawValue)
            fields.string("sid", record.sid)
            fields.value("headers", record.headers)
            fields.value("answer_headers", record.answerHeaders)
            fields.string("remote", record.remote)
            fields.string("upstream", record.upstream)
            fields.string("target", record.target)
            fields.string("scheme", record.scheme)
            fields.value("tls", record.tls?.jsonValue)
            fields.string("parser", record.parser?.rawValue)
            fields.string("app", record.app)
        case .engine(let record):
            fields.string("dir", record.dir.rawValue)
            fields.string("transport", record.transport.rawValue)
            fields.string("type", record.type.name)
            fields.value("data", record.data)
        case .packet(let record):
            fields.string("dir", record.dir.rawValue)
            fields.string("transport", record.transport.rawValue)
            fields.string("type", record.type.name)
            fields.string("nsp", record.nsp)
            fields.string("query", record.query)
            if let id = record.id { fields.unsigned("id", id) }
            fields.string("event", record.event)
            if let args = record.args { fields.value("args", .array(args)) }
            fields.value("data", record.data)
            fields.string("raw", record.raw)
            if let attachments = record.attachments { fields.value("attachments", .array(attachments.map { .string(JSONString($0)) })) }
            fields.double("latency_ms", record.latencyMilliseconds)
            fields.string("recovers", record.recovers)
            if let recovered = record.recovered { fields.literal("recovered", recovered ? "true" : "false") }
        case .jwt(let record):
            fields.string("source", record.source.description)
            fields.string("nsp", record.nsp)
            fields.value("header", record.header)
            fields.value("claims", record.claims)
            // null means "no key given": always written.
            fields.literal("verified", record.verified.map { $0 ? "true" : "false" } ?? "null")
            fields.string("reason", record.reason)
            fields.string("exp", record.exp)
            fields.string("iat", record.iat)
            fields.string("nbf", record.nbf)
            fields.double("expires_in_s", record.expiresInSeconds)
            if let warnings = record.warnings { fields.value("warnings", .array(warnings.map { .string(JSONString($0)) })) }
        case .close(let record):
            fields.string("by", record.by.rawValue)
            fields.string("reason", record.reason)
        case .error(let record), .info(let record):
            fields.string("dir", record.dir?.rawValue)
            fields.string("code", record.code.rawValue)
            fields.string("message", record.message)
            fields.string("raw", record.raw)
        case .fault(let record):
            fields.string("rule", record.rule)
            fields.string("action", record.action.rawValue)
            fields.string("dir", record.dir?.rawValue)
            if let packet = record.packet { fields.int("packet", packet) }
            fields.double("delay_ms", record.delayMilliseconds)
            fields.string("raw", record.raw)
            fields.string("detail", record.detail)
        case .diagnosis(let record):
            fields.string("code", record.code.rawValue)
            fields.string("severity", record.severity.rawValue)
            fields.string("message", record.message)
            fields.literal("evidence", "[" + record.evidence.map(String.init).joined(separator: ",") + "]")
            fields.string("docs", record.docs)
        case .intervention(let record):
            fields.string("action", record.action.rawValue)
            fields.string("by", record.by.rawValue)
            fields.string("dir", record.dir.rawValue)
            if let packet = record.packet { fields.int("packet", packet) }
            fields.string("breakpoint", record.breakpoint)
            fields.string("raw", record.raw)
            if let attachments = record.attachments { fields.value("attachments", .array(attachments.map { .string(JSONString($0)) })) }
            if let answers = record.answers { fields.int("answers", answers) }
            fields.double("held_ms", record.heldMilliseconds)
            fields.string("detail", record.detail)
        }
        fields.close()
        swap(&fields.out, &bytes)
    }
}

/// Writes `{"key":value,...}`; absent optionals are left out, as `encodeIfPresent` does.
struct JSONFieldWriter {
    var out: [UInt8] = []
    private var first = true

    mutating func open() {
        out.append(UInt8(ascii: "{"))
    }

    /// `,"name":` byte by byte: keys are short, and `append(contentsOf:)` costs more per call than
    /// a few single appends (it was a fifth of writing a packet line).
    private mutating func key(_ name: StaticString) {
        if !first { out.append(UInt8(ascii: ",")) }
        first = false
        out.append(UInt8(ascii: "\""))
        let start = name.utf8Start
        for offset in 0..<name.utf8CodeUnitCount { out.append(start[offset]) }
        out.append(UInt8(ascii: "\""))
        out.append(UInt8(ascii: ":"))
    }

    mutating func string(_ name: StaticString, _ value: String?) {
        guard let value else { return }
        key(name)
        out.append(UInt8(ascii: "\""))
        JSONString.appendEscaped(value, to: &out)
        out.append(UInt8(ascii: "\""))
    }

    mutating func int(_ name: StaticString, _ value: Int) {
        key(name)
        if value < 0 { out.append(UInt8(ascii: "-")) }
        out.appendDecimal(UInt64(value.magnitude))
    }

    mutating func unsigned(_ name: StaticString, _ value: UInt64) {
        key(name)
        out.appendDecimal(value)
    }

    mutating func double(_ name: StaticString, _ value: Double?) {
        guard let value, let number = JSONNumber(value) else { return }
        literal(name, number.literal)
    }

    mutating func literal(_ name: StaticString, _ text: String) {
        key(name)
        out.append(contentsOf: text.utf8)
    }

    mutating func value(_ name: StaticString, _ value: JSONValue?) {
        guard let value else { return }
        key(name)
        value.writeUTF8(to: &out)
    }

    mutating func close() {
        out.append(UInt8(ascii: "}"))
    }
}
