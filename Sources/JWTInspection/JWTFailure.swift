/// Why a token did not verify.
public struct JWTFailure: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable, Codable {
        case malformed
        case algNoneRefused = "alg_none_refused"
        case unsupportedAlgorithm = "unsupported_algorithm"
        case algorithmMismatch = "algorithm_mismatch"
        case noKeyForKID = "no_key_for_kid"
        case invalidKey = "invalid_key"
        case badSignature = "bad_signature"
        case expired
        case notYetValid = "not_yet_valid"
        /// `crit` names header parameters the token must not be accepted without understanding
        /// (RFC 7515 §4.1.11); siotap understands none.
        case unsupportedCritical = "unsupported_crit"
        /// `exp`, `nbf` or `iat` is not a number (RFC 7519 §2, NumericDate): servers refuse it.
        case invalidTimeClaim = "invalid_time_claim"
    }

    public let code: Code
    /// A sentence for people: `expired at 2026-11-27T08:00:00Z`, `no key for kid "k2"`.
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    static func malformed(_ detail: String) -> JWTFailure { JWTFailure(.malformed, "malformed token: \(detail)") }
}
