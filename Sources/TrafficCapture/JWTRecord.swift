public import SocketIOProtocol

/// A token seen in a handshake, and what siotap made of it.
public struct JWTRecord: Sendable, Hashable, Decodable {
    public var source: TokenSource
    /// For `auth.*`: the namespace of the CONNECT.
    public var nsp: String?
    public var header: JSONValue
    public var claims: JSONValue
    public var verified: Bool?
    public var reason: String?
    public var exp: String?
    public var iat: String?
    public var nbf: String?
    public var expiresInSeconds: Double?
    public var warnings: [String]?

    public init(
        source: TokenSource, nsp: String? = nil, header: JSONValue, claims: JSONValue, verified: Bool?, reason: String? = nil,
        exp: String? = nil, iat: String? = nil, nbf: String? = nil, expiresInSeconds: Double? = nil, warnings: [String]? = nil
    ) {
        self.source = source
        self.nsp = nsp
        self.header = header
        self.claims = claims
        self.verified = verified
        self.reason = reason
        self.exp = exp
        self.iat = iat
        self.nbf = nbf
        self.expiresInSeconds = expiresInSeconds
        self.warnings = warnings
    }

    private enum CodingKeys: String, CodingKey {
        case source, nsp, header, claims, verified, reason, exp, iat, nbf, warnings
        case expiresInSeconds = "expires_in_s"
    }

}
