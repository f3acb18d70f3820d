/// What a token is checked against.
public enum JWTVerificationKey: Sendable, Hashable {
    /// An HMAC secret (HS256/384/512), used as its UTF-8 bytes, of any length.
    case secret(String)
    /// A PEM public key or certificate: RSA (RS*, PS*), EC P-256/384/521 (ES*), or Ed25519 (EdDSA).
    case pem(String)
    /// A JWK Set (`{"keys":[...]}`); the key is chosen by the token's `kid`.
    case jwks(String)

    /// A short description for reports, never the secret itself.
    public var summary: String {
        switch self {
        case .secret(let secret): "HMAC secret (\(secret.utf8.count) bytes)"
        case .pem: "PEM public key"
        case .jwks: "JWKS"
        }
    }
}
