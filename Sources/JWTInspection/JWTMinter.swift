import SocketIOProtocol

/// Makes tokens with exactly the header and claims given (their JSON text kept), for the demo,
/// bench, tests and re-minting captured tokens.
public enum JWTMinter {
    /// HS256/384/512, as the header's `alg` says (HS256 when it names no HMAC algorithm).
    public static func hmac(header: JSONValue = .object(["alg": "HS256", "typ": "JWT"]), claims: JSONValue, secret: String) -> String {
        let algorithm = header["alg"]?.stringValue.flatMap { alg -> String? in
            if case .hmac? = JWTAlgorithmFamily(alg: alg) { alg } else { nil }
        } ?? "HS256"
        // An HMAC secret always signs.
        return (try? sign(header: header, claims: claims, key: .secret(secret, algorithm: algorithm))) ?? ""
    }

    /// Signed with `key`; the header is `{"alg":…,"typ":"JWT"}` with the key's algorithm unless given.
    public static func sign(header: JSONValue? = nil, claims: JSONValue, key: JWTSigningKey) throws -> String {
        let header = header ?? .object(["alg": .string(JSONString(key.algorithm)), "typ": "JWT"])
        let input = Base64.encodeURL(Array(header.jsonText.utf8)) + "." + Base64.encodeURL(Array(claims.jsonText.utf8))
        return input + "." + Base64.encodeURL(try key.sign(Array(input.utf8)))
    }

}
