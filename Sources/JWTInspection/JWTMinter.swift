import Crypto
import SocketIOProtocol

/// Makes HS256/384/512 tokens with exactly the header and claims given (their JSON text kept),
/// for the demo, tests and re-minting captured tokens.
public enum JWTMinter {
    public static func hmac(header: JSONValue = .object(["alg": "HS256", "typ": "JWT"]), claims: JSONValue, secret: String) -> String {
        let bits = header["alg"]?.stringValue.flatMap { JWTAlgorithmFamily(alg: $0) }.flatMap { family -> Int? in
            if case .hmac(let bits) = family { return bits }
            return nil
        } ?? 256
        let input = base64URL(Array(header.jsonText.utf8)) + "." + base64URL(Array(claims.jsonText.utf8))
        let key = SymmetricKey(data: Array(secret.utf8))
        let signature: [UInt8] =
            switch bits {
            case 384: Array(HMAC<SHA384>.authenticationCode(for: Array(input.utf8), using: key))
            case 512: Array(HMAC<SHA512>.authenticationCode(for: Array(input.utf8), using: key))
            default: Array(HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: key))
            }
        return input + "." + base64URL(signature)
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        String(Base64.encode(bytes).compactMap { character -> Character? in
            switch character {
            case "+": "-"
            case "/": "_"
            case "=": nil
            default: character
            }
        })
    }
}
