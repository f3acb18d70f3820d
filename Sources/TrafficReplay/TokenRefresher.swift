import JWTInspection
import TrafficCapture

/// Re-mints the tokens of a capture for a replay: same header and claims, `exp`/`iat`/`nbf`
/// shifted by the time since the capture, signed with the secret. A token that was valid then is
/// valid now, one that had expired is still expired, and one whose signature was bad stays bad.
public struct TokenRefresher: Sendable {
    public let secret: String
    /// Seconds since 1970, now.
    public let now: Double

    public init(secret: String, now: Double = CaptureClock.secondsSince1970()) {
        self.secret = secret
        self.now = now
    }

    /// - Parameters:
    ///   - recordedAt: when the token was seen (seconds since 1970).
    ///   - signatureWasGood: the capture's verdict on the signature, when it has one; otherwise the
    ///     signature is checked with the secret, and a redacted (empty) one counts as good.
    public func refresh(_ token: String, recordedAt: Double, signatureWasGood: Bool?) async -> String {
        guard let (header, claims) = JWTText.parts(of: token), case .object(var object) = claims else { return token }
        // Down, never up: a token is minted before it is seen, so its shifted iat stays in the past.
        // Rounded to the nearest second, it could land up to half a second ahead of now, and
        // PyJWT refuses such a token as "not yet valid (iat)" (a replay against python-socketio
        // failed one run in three).
        let elapsed = (now - recordedAt).rounded(.down)
        for index in object.members.indices where ["exp", "iat", "nbf"].contains(object.members[index].key.value) {
            if let value = object.members[index].value.numberValue?.doubleValue, let shifted = JSONNumber((value + elapsed).rounded()) {
                object.members[index].value = .number(shifted)
            }
        }
        var good = signatureWasGood
        if good == nil { good = await isSignatureGood(token) }
        return JWTMinter.hmac(header: header, claims: .object(object), secret: good == true ? secret : secret + "\u{0}not-the-secret")
    }

    private func isSignatureGood(_ token: String) async -> Bool {
        if token.hasSuffix(".") { return true }  // redacted: nothing tells it was bad
        // Times do not matter here, only the signature.
        let report = await JWTInspector(key: .secret(secret)).inspect(token)
        return report.failure?.code != .badSignature && report.failure?.code != .algorithmMismatch
    }
}
