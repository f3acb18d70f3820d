import Crypto
import CryptoExtras
import SocketIOProtocol

/// A private key that signs tokens: an HMAC secret, or a PEM private key (RSA, EC P-256/384/521,
/// Ed25519), with the algorithm it signs with (its natural one unless another of its family is asked).
public struct JWTSigningKey: Sendable {
    enum Material: Sendable {
        case secret(String)
        case rsa(_RSA.Signing.PrivateKey)
        case p256(P256.Signing.PrivateKey)
        case p384(P384.Signing.PrivateKey)
        case p521(P521.Signing.PrivateKey)
        case ed25519(Curve25519.Signing.PrivateKey)
    }

    let material: Material
    /// The `alg` its tokens carry.
    public let algorithm: String

    public struct Failure: Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    public static func secret(_ secret: String, algorithm: String = "HS256") throws -> JWTSigningKey {
        guard case .hmac? = JWTAlgorithmFamily(alg: algorithm) else {
            throw Failure(description: "an HMAC secret signs HS256, HS384 or HS512, not \(algorithm)")
        }
        return JWTSigningKey(material: .secret(secret), algorithm: algorithm)
    }

    /// A PEM private key (PKCS#8 `PRIVATE KEY`, PKCS#1 `RSA PRIVATE KEY` or SEC1 `EC PRIVATE KEY`).
    public static func pem(_ text: String, algorithm: String? = nil) throws -> JWTSigningKey {
        let material: Material
        let natural: String
        if let key = try? P256.Signing.PrivateKey(pemRepresentation: text) {
            (material, natural) = (.p256(key), "ES256")
        } else if let key = try? P384.Signing.PrivateKey(pemRepresentation: text) {
            (material, natural) = (.p384(key), "ES384")
        } else if let key = try? P521.Signing.PrivateKey(pemRepresentation: text) {
            (material, natural) = (.p521(key), "ES512")
        } else if let key = ed25519(pem: text) {
            (material, natural) = (.ed25519(key), "EdDSA")
        } else if let key = try? _RSA.Signing.PrivateKey(unsafePEMRepresentation: text) {
            // "unsafe": keys under 2048 bits are accepted; a test key is the user's choice.
            (material, natural) = (.rsa(key), "RS256")
        } else {
            throw Failure(description: "not a PEM private key siotap can sign with (RSA, EC P-256/384/521 or Ed25519, unencrypted)")
        }
        let chosen = algorithm ?? natural
        let fits: Bool =
            switch (material, JWTAlgorithmFamily(alg: chosen)) {
            case (.rsa, .rsa?), (.rsa, .pss?), (.ed25519, .eddsa?): true
            case (.p256, _), (.p384, _), (.p521, _): chosen == natural
            default: false
            }
        guard fits else { throw Failure(description: "a key for \(natural) cannot sign \(chosen)") }
        return JWTSigningKey(material: material, algorithm: chosen == "Ed25519" ? "EdDSA" : chosen)
    }

    /// Ed25519's PKCS#8 form is fixed: a 16-byte prefix and the 32-byte seed.
    private static func ed25519(pem text: String) -> Curve25519.Signing.PrivateKey? {
        let prefix: [UInt8] = [0x30, 0x2E, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]
        let lines = text.split(whereSeparator: \.isNewline).map { String($0.filter { !$0.isWhitespace }) }
        guard let begin = lines.firstIndex(of: "-----BEGINPRIVATEKEY-----"), let end = lines.firstIndex(of: "-----ENDPRIVATEKEY-----"), begin < end,
            let der = Base64.decode(lines[(begin + 1)..<end].joined()), der.count == 48, Array(der.prefix(16)) == prefix
        else { return nil }
        return try? Curve25519.Signing.PrivateKey(rawRepresentation: der.suffix(32))
    }

    func sign(_ input: [UInt8]) throws -> [UInt8] {
        switch material {
        case .secret(let secret):
            let key = SymmetricKey(data: Array(secret.utf8))
            switch algorithm {
            case "HS384": return Array(HMAC<SHA384>.authenticationCode(for: input, using: key))
            case "HS512": return Array(HMAC<SHA512>.authenticationCode(for: input, using: key))
            default: return Array(HMAC<SHA256>.authenticationCode(for: input, using: key))
            }
        case .rsa(let key):
            let padding: _RSA.Signing.Padding = algorithm.hasPrefix("PS") ? .PSS : .insecurePKCS1v1_5
            let signature =
                switch algorithm.suffix(3) {
                case "384": try key.signature(for: SHA384.hash(data: input), padding: padding)
                case "512": try key.signature(for: SHA512.hash(data: input), padding: padding)
                default: try key.signature(for: SHA256.hash(data: input), padding: padding)
                }
            return Array(signature.rawRepresentation)
        // JWS wants ECDSA signatures as r and s side by side, not DER.
        case .p256(let key): return Array(try key.signature(for: SHA256.hash(data: input)).rawRepresentation)
        case .p384(let key): return Array(try key.signature(for: SHA384.hash(data: input)).rawRepresentation)
        case .p521(let key): return Array(try key.signature(for: SHA512.hash(data: input)).rawRepresentation)
        case .ed25519(let key): return Array(try key.signature(for: input))
        }
    }
}
