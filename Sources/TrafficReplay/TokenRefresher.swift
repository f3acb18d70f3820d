import JWTInspection
import SocketIOProtocol
import TrafficCapture

/// Re-mints the tokens of a capture for a replay: same header (its `kid` too) and claims,
/// `exp`/`iat`/`nbf` shifted by the time since the capture, signed with the key. A token that was
/// valid then is valid now, one that had expired is still expired, and one whose signature was
/// bad stays bad (its new signature is spoiled the same way).
public struct TokenRefresher: Sendable {
    /// What signs: an HMAC secret (HS256/384/512, as each token's header says), or a PEM private
    /// key (RS*, PS* and EdDSA as the header says when the key fits it; ES* by the curve).
    public enum Key: Sendable {
        case secret(String)
        case pem(String)
    }

    public let key: Key
    /// Seconds since 1970, now.
    public let now: Double
    /// Claims set to these values in every token it mints (`siotap load --claim 'sub={user}'`:
    /// each virtual user its own), added when the token lacks them.
    public var overrides: [(name: String, value: JSONValue)] = []

    public init(key: Key, now: Double = CaptureClock.secondsSince1970()) {
        self.key = key
        self.now = now
    }

    public init(secret: String, now: Double = CaptureClock.secondsSince1970()) {
        self.init(key: .secret(secret), now: now)
    }

    /// Whether `key` can sign at all (a PEM that is no private key cannot): checked before a run.
    public static func check(_ key: Key) throws {
        if case .pem(let text) = key { _ = try JWTSigningKey.pem(text) }
    }

    /// - Parameters:
    ///   - recordedAt: when the token was seen (seconds since 1970).
    ///   - signatureWasGood: the capture's verdict on the signature, when it has one; otherwise,
    ///     with a secret, the signature is checked with it (a redacted, empty one counts as good);
    ///     with a private key it counts as good.
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
        for (name, value) in overrides {
            if let index = object.members.firstIndex(where: { $0.key.value == name }) {
                object.members[index].value = value
            } else {
                object.members.append(.init(key: JSONString(name), value: value))
            }
        }
        var good = signatureWasGood
        if good == nil { good = await isSignatureGood(token) }
        guard let (signingKey, signedHeader) = signer(for: header),
              let minted = try? JWTMinter.sign(header: signedHeader, claims: .object(object), key: signingKey)
        else { return token }
        return good == true ? minted : Self.spoiled(minted)
    }

    /// The key to sign a token with this header, and the header (its `alg` the key's when the
    /// recorded one does not fit the key; every other field kept).
    private func signer(for header: JSONValue) -> (JWTSigningKey, JSONValue)? {
        let recorded = header["alg"]?.stringValue
        let signingKey: JWTSigningKey?
        switch key {
        case .secret(let secret):
            signingKey = (recorded.flatMap { try? JWTSigningKey.secret(secret, algorithm: $0) }) ?? (try? JWTSigningKey.secret(secret))
        case .pem(let text):
            signingKey = (recorded.flatMap { try? JWTSigningKey.pem(text, algorithm: $0) }) ?? (try? JWTSigningKey.pem(text))
        }
        guard let signingKey else { return nil }
        guard case .object(var fields) = header else { return (signingKey, .object(["alg": .string(JSONString(signingKey.algorithm)), "typ": "JWT"])) }
        if let index = fields.members.firstIndex(where: { $0.key.value == "alg" }) {
            fields.members[index].value = .string(JSONString(signingKey.algorithm))
        } else {
            fields.members.insert(.init(key: JSONString("alg"), value: .string(JSONString(signingKey.algorithm))), at: 0)
        }
        return (signingKey, .object(fields))
    }

    /// The token with its signature's first character changed: still well-formed, never valid.
    static func spoiled(_ token: String) -> String {
        guard let dot = token.lastIndex(of: "."), token.index(after: dot) < token.endIndex else { return token + "AAAA" }
        let first = token.index(after: dot)
        return token[..<first] + (token[first] == "A" ? "B" : "A") + token[token.index(after: first)...]
    }

    private func isSignatureGood(_ token: String) async -> Bool {
        guard case .secret(let secret) = key else { return true }
        if token.hasSuffix(".") { return true }  // redacted: nothing tells it was bad
        // Times do not matter here, only the signature.
        let report = await JWTInspector(key: .secret(secret)).inspect(token)
        return report.failure?.code != .badSignature && report.failure?.code != .algorithmMismatch
    }
}
