/// Why a capture line could not be read.
public struct CaptureReadError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// The line is not JSON.
        case invalidJSON = "invalid_json"
        /// The line is JSON but not a record of format v1.
        case invalidRecord = "invalid_record"
        /// The last line has no newline and does not parse: the writer was cut off.
        case truncatedLastLine = "truncated_last_line"
        /// A line longer than any record siotap writes: skipped, never held whole.
        case lineTooLong = "line_too_long"
        /// The file could not be opened or read.
        case io
    }

    public let code: Code
    /// 1-based line number (0 for file errors).
    public let line: Int
    public let detail: String

    public init(_ code: Code, line: Int, detail: String) {
        self.code = code
        self.line = line
        self.detail = detail
    }

    /// `line 3: capture.invalid_json: …`: the code as documented, for scripts that grep for it.
    public var description: String {
        let coded = code == .io ? detail : "capture.\(code.rawValue): \(detail)"
        return line > 0 ? "line \(line): \(coded)" : coded
    }
}

extension CaptureRecord {
    /// The record as one line of JSON (no newline), every wire literal kept.
    public var jsonLine: String {
        String(decoding: jsonBytes, as: UTF8.self)
    }

    /// Reads one line of a capture.
    public init(jsonLine: String) throws(CaptureReadError) {
        let value: JSONValue
        do { value = try JSONValue.parse(jsonLine) } catch {
            throw CaptureReadError(.invalidJSON, line: 0, detail: "not JSON: \(error)")
        }
        do { self = try JSONValueDecoder().decode(CaptureRecord.self, from: value) } catch {
            throw CaptureReadError(.invalidRecord, line: 0, detail: "not a capture record: \(Self.describe(error))")
        }
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            let path = (context.codingPath + [key]).map(\.stringValue).joined(separator: ".")
            return "missing \"\(path)\""
        case DecodingError.typeMismatch(_, let context), DecodingError.dataCorrupted(let context),
            DecodingError.valueNotFound(_, let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return "\"\(path)\": \(context.debugDescription)"
        default:
            return "\(error)"
        }
    }
}
