import Crypto
import Foundation
import JWTKit
import SocketIOProtocol

/// Decodes a JWT and, given a key, verifies its signature and times.
///
/// Checks run in this order, and the first failure is the verdict: the token's form, `alg: none`,
/// the key for its `kid`, the algorithm against the key, the signature, then `nbf` and `exp` (with
/// ``leewaySeconds``). jwt-kit does the asymmetric signatures; HMAC is checked with swift-crypto
/// directly, because jwt-kit traps on secrets shorter than the digest.
public struct JWTInspector: Sendable {
    public let key: JWTVerificationKey?
    public let leewaySeconds: Double

    public init(key: JWTVerificationKey? = nil, leewaySeconds: Double = 0) {
        self.key = key
        self.leewaySeconds = leewaySeconds
    }

    /// Inspects a token at time `now` (seconds since 1970).
    public func inspect(_ token: String, now: Double = Date().timeIntervalSince1970) async -> JWTReport {
        var report = JWTReport(leewaySeconds: leewaySeconds)
        report.keyDescription = key?.summary
        let parts = token.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3 else {
            return failed(report, .malformed("expected 3 dot-separated parts, found \(parts.count)"))
        }
        do {
            report.header = try Self.decodeSegment(parts[0], name: "header")
            report.claims = try Self.decodeSegment(parts[1], name: "claims")
        } catch {
            return failed(report, error)
        }
        guard report.header.objectValue != nil else { return failed(report, .malformed("the header is not a JSON object")) }
        guard report.claims.objectValue != nil else { return failed(report, .malformed("the claims are not a JSON object")) }
        report.algorithm = report.header["alg"]?.stringValue
        report.keyID = report.header["kid"]?.stringValue
        fillTimes(&report, now: now)

        guard let key else { return report }
        guard let algorithm = report.algorithm else { return failed(report, .malformed("the header has no string \"alg\"")) }
        if algorithm.lowercased() == "none" {
            return failed(report, JWTFailure(.algNoneRefused, "alg: none refused"))
        }
        do {
            let signingInput = Array(token.utf8[..<parts[1].endIndex])
            guard let signature = Base64.decodeURL(parts[2]) else {
                throw JWTFailure.malformed("the signature is not base64url")
            }
            try await verifySignature(
                token: token, signingInput: signingInput, signature: signature, algorithm: algorithm,
                keyID: report.keyID, key: key
            )
        } catch let failure as JWTFailure {
            return failed(report, failure)
        } catch {
            return failed(report, JWTFailure(.badSignature, "bad signature"))
        }
        if let failure = Self.criticalFailure(report.header) ?? Self.timeTypeFailure(report.claims) ?? timeFailure(report.claims, now: now) {
            return failed(report, failure)
        }
        report.verified = true
        return report
    }

    private func failed(_ report: JWTReport, _ failure: JWTFailure) -> JWTReport {
        var report = report
        report.failure = failure
        // A malformed token without a key is still "not verified": it cannot be trusted either way.
        report.verified = key == nil && failure.code != .malformed ? nil : false
        return report
    }

    // MARK: Parts and times

    static func decodeSegment(_ segment: Substring.UTF8View.SubSequence, name: String) throws(JWTFailure) -> JSONValue {
        do { return try JWTText.decodeSegment(segment, name: name) } catch { throw .malformed(error.description) }
    }

    private func fillTimes(_ report: inout JWTReport, now: Double) {
        // A time claim is any JSON number: one outside the years 1 to 9999 (1e300, 18E5557922) is
        // reported as such, never turned into a date.
        var outOfRange: [String] = []
        func time(_ claim: String) -> Double? {
            guard let number = report.claims[claim]?.numberValue, let value = number.doubleValue else { return nil }
            guard RFC3339.representable.contains(value) else {
                outOfRange.append("\(claim) \(number.literal) is not a date between the years 1 and 9999")
                return nil
            }
            return value
        }
        let exp = time("exp"), iat = time("iat"), nbf = time("nbf")
        if let exp {
            report.expiresAt = RFC3339.format(secondsSince1970: exp, fractionDigits: 0)
            report.expiresInSeconds = ((exp - now) * 1000).rounded() / 1000
        } else if report.claims["exp"] == nil {
            report.warnings.append("no exp claim: the token never expires")
        }
        if let iat { report.issuedAt = RFC3339.format(secondsSince1970: iat, fractionDigits: 0) }
        if let nbf { report.notBefore = RFC3339.format(secondsSince1970: nbf, fractionDigits: 0) }
        report.warnings += outOfRange
        if let exp, let iat, exp - iat > 86_400 {
            report.warnings.append("long lifetime: \(Int((exp - iat) / 3600)) hours between iat and exp")
        }
        if report.algorithm?.lowercased() == "none" { report.warnings.append("alg is none: the token is unsigned") }
        if let failure = Self.timeTypeFailure(report.claims) { report.warnings.append(failure.message) }
        if let failure = Self.criticalFailure(report.header) { report.warnings.append(failure.message) }
    }

    /// A token's own text in a sentence, at most 60 characters of it.
    private static func clipped(_ text: String) -> String {
        text.count > 60 ? text.prefix(60) + "…" : text
    }

    /// A `crit` header: whatever it lists, siotap does not understand it, and a recipient that
    /// does not must refuse the token (RFC 7515 §4.1.11).
    static func criticalFailure(_ header: JSONValue) -> JWTFailure? {
        guard let crit = header["crit"] else { return nil }
        let names = clipped(crit.arrayValue?.compactMap(\.stringValue).map { "\"\($0)\"" }.joined(separator: ", ") ?? crit.jsonText)
        return JWTFailure(.unsupportedCritical, "crit lists header parameters siotap does not understand (\(names)): the token cannot be verified")
    }

    /// A time claim that is there but not a number: jsonwebtoken and PyJWT refuse such a token,
    /// and a check that skipped it would call a token with `"exp": "0"` valid.
    static func timeTypeFailure(_ claims: JSONValue) -> JWTFailure? {
        for claim in ["exp", "nbf", "iat"] {
            guard let value = claims[claim], value.numberValue == nil else { continue }
            return JWTFailure(.invalidTimeClaim, "\(claim) is \(clipped(value.jsonText)), not a number of seconds (a NumericDate): servers refuse the token")
        }
        return nil
    }

    private func timeFailure(_ claims: JSONValue, now: Double) -> JWTFailure? {
        func shown(_ number: JSONNumber, _ value: Double) -> String {
            RFC3339.representable.contains(value) ? RFC3339.format(secondsSince1970: value, fractionDigits: 0) : number.literal
        }
        if let exp = claims["exp"]?.numberValue, let value = exp.doubleValue, now > value + leewaySeconds {
            return JWTFailure(.expired, "expired at \(shown(exp, value))")
        }
        if let nbf = claims["nbf"]?.numberValue, let value = nbf.doubleValue, now + leewaySeconds < value {
            return JWTFailure(.notYetValid, "not valid before \(shown(nbf, value))")
        }
        return nil
    }
}
