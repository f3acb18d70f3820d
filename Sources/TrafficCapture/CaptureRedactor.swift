/// Makes a capture safe to commit as a fixture: token signatures removed (header and claims are
/// kept, so replay can re-mint the token with a secret), `Authorization` and `Cookie` header values
/// replaced, and any given secret blanked wherever it appears. Each line stays a valid record.
public struct CaptureRedactor: Sendable {
    public static let placeholder = "[redacted]"

    public struct Summary: Sendable, Hashable {
        public var records = 0
        public var tokens = 0
        public var headers = 0
        public var secrets = 0

        public init() {}
    }

    public let secrets: [String]

    public init(secrets: [String] = []) {
        // Longest first, so a secret that contains another is blanked whole.
        self.secrets = secrets.filter { !$0.isEmpty }.sorted { $0.count > $1.count }
    }

    /// The redacted record.
    public func redact(_ record: CaptureRecord, summary: inout Summary) throws(CaptureReadError) -> CaptureRecord {
        var record = record
        summary.records += 1
        if case .session(var session) = record.body, case .object(var headers)? = session.headers {
            for index in headers.members.indices where ["authorization", "cookie"].contains(headers.members[index].key.value.lowercased()) {
                headers.members[index].value = .string(Self.placeholder)
                summary.headers += 1
            }
            session.headers = .object(headers)
            record.body = .session(session)
        }
        // Tokens and secrets are strings wherever they are (raw text, args, data, urls): work on
        // the line's text, where each appears verbatim, then read it back.
        var line = record.jsonLine
        line = stripSignatures(line, count: &summary.tokens)
        for secret in secrets {
            let escaped = JSONString(secret).escaped
            summary.secrets += line.ranges(of: escaped).count
            line = line.replacing(escaped, with: Self.placeholder)
        }
        return try CaptureRecord(jsonLine: line)
    }

    /// Replaces every `header.claims.signature` token with `header.claims.` (signature dropped).
    func stripSignatures(_ text: String, count: inout Int) -> String {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        func isBase64URL(_ byte: UInt8) -> Bool {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"):
                true
            default: false
            }
        }
        while index < bytes.count {
            // A JWS header is base64url of `{"…`, which always starts "eyJ".
            guard index + 3 <= bytes.count, bytes[index] == UInt8(ascii: "e"), bytes[index + 1] == UInt8(ascii: "y"),
                bytes[index + 2] == UInt8(ascii: "J"), index == 0 || !isBase64URL(bytes[index - 1])
            else {
                out.append(bytes[index])
                index += 1
                continue
            }
            var end = index
            var dots: [Int] = []
            while end < bytes.count, isBase64URL(bytes[end]) || (bytes[end] == UInt8(ascii: ".") && dots.count < 2) {
                if bytes[end] == UInt8(ascii: ".") { dots.append(end) }
                end += 1
            }
            let candidate = String(decoding: bytes[index..<end], as: UTF8.self)
            if dots.count == 2, end > dots[1] + 1, JWTText.looksLikeJWT(candidate) {
                out.append(contentsOf: bytes[index...dots[1]])
                count += 1
            } else {
                out.append(contentsOf: bytes[index..<end])
            }
            index = end
        }
        return String(decoding: out, as: UTF8.self)
    }
}
