import SocketIOProtocol

/// What siotap found in a token: its parts, its times, and the verdict.
public struct JWTReport: Sendable, Hashable {
    /// The header as on the wire (key order and number literals kept).
    public var header: JSONValue
    /// The claims as on the wire.
    public var claims: JSONValue
    public var algorithm: String?
    public var keyID: String?
    /// `true` verified, `false` refused, `nil` when no key was given (decoded only).
    public var verified: Bool?
    /// Why verification failed, or why the token could not be read.
    public var failure: JWTFailure?
    /// What the token was checked against, when a key was given.
    public var keyDescription: String?
    /// `exp`, `iat` and `nbf` as RFC 3339 UTC.
    public var expiresAt: String?
    public var issuedAt: String?
    public var notBefore: String?
    /// Seconds from the inspection time to `exp` (negative once expired).
    public var expiresInSeconds: Double?
    public var leewaySeconds: Double
    /// Things worth a look even when the signature is fine: `alg` none, no `exp`, a long lifetime.
    public var warnings: [String]

    public var subject: String? { claims["sub"]?.stringValue ?? claims["id"].map(\.scalarText) }

    public init(
        header: JSONValue = .null, claims: JSONValue = .null, algorithm: String? = nil, keyID: String? = nil,
        verified: Bool? = nil, failure: JWTFailure? = nil, keyDescription: String? = nil, expiresAt: String? = nil,
        issuedAt: String? = nil, notBefore: String? = nil, expiresInSeconds: Double? = nil, leewaySeconds: Double = 0,
        warnings: [String] = []
    ) {
        self.header = header
        self.claims = claims
        self.algorithm = algorithm
        self.keyID = keyID
        self.verified = verified
        self.failure = failure
        self.keyDescription = keyDescription
        self.expiresAt = expiresAt
        self.issuedAt = issuedAt
        self.notBefore = notBefore
        self.expiresInSeconds = expiresInSeconds
        self.leewaySeconds = leewaySeconds
        self.warnings = warnings
    }

    /// True when the token could not even be decoded.
    public var isMalformed: Bool { failure?.code == .malformed }
}
