/// What went wrong, worked out from the records before it: a known failure (sticky sessions
/// missing, an expired token, a refused upgrade…), with the records that show it and where the
/// socket.io documentation explains the fix.
public struct DiagnosisRecord: Sendable, Hashable, Decodable {
    /// A stable code, `area.what` (`sticky.session_unknown`); `docs/diagnoses.md` lists them all.
    public var code: DiagnosisCode
    public var severity: Severity
    /// One sentence naming the values seen, then what to do.
    public var message: String
    /// The `seq`s of the records that show it, oldest first.
    public var evidence: [Int]
    /// The socket.io documentation's section on the fix.
    public var docs: String?

    public enum Severity: String, Sendable, Hashable, Codable, Comparable {
        /// Worth a look; the session may still have worked.
        case warn
        /// The session failed, or will.
        case error

        public static func < (lhs: Self, rhs: Self) -> Bool { lhs == .warn && rhs == .error }
    }

    public init(code: DiagnosisCode, severity: Severity, message: String, evidence: [Int], docs: String? = nil) {
        self.code = code
        self.severity = severity
        self.message = message
        self.evidence = evidence
        self.docs = docs
    }
}

/// A diagnosis' code: a struct, not an enum, so that readers keep codes later versions add.
public struct DiagnosisCode: RawRepresentable, Sendable, Hashable, Codable, ExpressibleByStringLiteral, CustomStringConvertible {
    public var rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { rawValue = value }
    public init(from decoder: any Decoder) throws { rawValue = try decoder.singleValueContainer().decode(String.self) }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public var description: String { rawValue }
}
