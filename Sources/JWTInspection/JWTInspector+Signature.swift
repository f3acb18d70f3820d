import Crypto
import Foundation
import JWTKit
import SocketIOProtocol

/// The key kinds a JWS algorithm needs.
enum JWTAlgorithmFamily: Equatable {
    case hmac(bits: Int)
    case rsa(bits: Int)
    case pss(bits: Int)
    case ecdsa(curve: String)
    case eddsa

    init?(alg: String) {
        switch alg {
        case "HS256": self = .hmac(bits: 256)
        case "HS384": self = .hmac(bits: 384)
        case "HS512": self = .hmac(bits: 512)
        case "RS256": self = .rsa(bits: 256)
        case "RS384": self = .rsa(bits: 384)
        case "RS512": self = .rsa(bits: 512)
        case "PS256": self = .pss(bits: 256)
        case "PS384": self = .pss(bits: 384)
        case "PS512": self = .pss(bits: 512)
        case "ES256": self = .ecdsa(curve: "P-256")
        case "ES384": self = .ecdsa(curve: "P-384")
        case "ES512": self = .ecdsa(curve: "P-521")
        case "EdDSA", "Ed25519": self = .eddsa
        default: return nil
        }
    }

    var keyKind: String {
        switch self {
        case .hmac: "an HMAC secret"
        case .rsa, .pss: "an RSA public key"
        case .ecdsa(let curve): "an EC \(curve) public key"
        case .eddsa: "an Ed25519 public key"
        }
    }

    var digest: DigestAlgorithm {
        switch self {
        case .rsa(let bits), .pss(let bits), .hmac(let bits): bits == 256 ? .sha256 : bits == 384 ? .sha384 : .sha512
        default: .sha256
        }
    }
}

/// Claims that jwt-kit need not read: siotap reads them itself, keeping the wire text.
private struct UncheckedClaims: JWTPayload {
    init(from decoder: any Decoder) throws {}
    func encode(to encoder: any Encoder) throws {}
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

extension JWTInspector {
    func verifySignature(
        token: String,
        signingInput: [UInt8],
        signature: [UInt8],
        algorithm: String,
        keyID: String?,
        key: JWTVerificationKey
    ) async throws {
        guard let family = JWTAlgorithmFamily(alg: algorithm) else {
            throw JWTFailure(.unsupportedAlgorithm, "unsupported algorithm \(algorithm)")
        }
        switch key {
        case .secret(let secret):
            guard case .hmac(let bits) = family else {
                throw JWTFailure(.algorithmMismatch, "algorithm \(algorithm) needs \(family.keyKind), but an HMAC secret was given")
            }
            guard Self.hmacMatches(bits: bits, secret: Array(secret.utf8), input: signingInput, signature: signature) else {
                throw JWTFailure(.badSignature, "bad signature")
            }
        case .pem(let pem):
            if case .hmac = family {
                throw JWTFailure(
                    .algorithmMismatch,
                    "algorithm \(algorithm) is HMAC but a public key was given (refused: key confusion)"
                )
            }
            let keys = try await Self.collection(pem: pem, family: family, algorithm: algorithm)
            try await Self.verify(token, with: keys)
        case .jwks(let json):
            let jwk = try Self.selectJWK(json: json, keyID: keyID, family: family, algorithm: algorithm)
            let keys = JWTKeyCollection()
            do {
                try await keys.add(jwk: jwk, isDefault: true)
            } catch {
                throw JWTFailure(.invalidKey, "the JWK for this token cannot be used: \(error)")
            }
            try await Self.verify(token, with: keys)
        }
    }

    private static func verify(_ token: String, with keys: JWTKeyCollection) async throws {
        do {
            _ = try await keys.verify(token, as: UncheckedClaims.self)
        } catch let error as JWTError where error.errorType == .signatureVerificationFailed {
            throw JWTFailure(.badSignature, "bad signature")
        } catch let error as JWTError where error.errorType == .malformedToken {
            throw JWTFailure.malformed(error.reason ?? "rejected by jwt-kit")
        } catch {
            throw JWTFailure(.badSignature, "bad signature (\(error))")
        }
    }

    static func hmacMatches(bits: Int, secret: [UInt8], input: [UInt8], signature: [UInt8]) -> Bool {
        let key = SymmetricKey(data: secret)
        switch bits {
        case 256: return HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: input, using: key)
        case 384: return HMAC<SHA384>.isValidAuthenticationCode(signature, authenticating: input, using: key)
        default: return HMAC<SHA512>.isValidAuthenticationCode(signature, authenticating: input, using: key)
        }
    }

    /// A one-key collection for a PEM key, after checking that the key is of the kind `alg` needs.
    private static func collection(pem: String, family: JWTAlgorithmFamily, algorithm: String) async throws -> JWTKeyCollection {
        let keys = JWTKeyCollection()
        let isCertificate = pem.contains("BEGIN CERTIFICATE")
        func mismatch(_ found: String) -> JWTFailure {
            JWTFailure(.algorithmMismatch, "algorithm \(algorithm) needs \(family.keyKind), but the key is \(found)")
        }
        if let rsa = try? (isCertificate ? Insecure.RSA.PublicKey(certificatePEM: pem) : Insecure.RSA.PublicKey(pem: pem)) {
            switch family {
            case .rsa: await keys.add(rsa: rsa, digestAlgorithm: family.digest)
            case .pss: await keys.add(pss: rsa, digestAlgorithm: family.digest)
            default: throw mismatch("an RSA public key")
            }
            return keys
        }
        let ecKeys: [(String, (String) throws -> any ECDSAKey)] = [
            ("P-256", { isCertificate ? try ES256PublicKey(certificate: $0) : try ES256PublicKey(pem: $0) }),
            ("P-384", { isCertificate ? try ES384PublicKey(certificate: $0) : try ES384PublicKey(pem: $0) }),
            ("P-521", { isCertificate ? try ES512PublicKey(certificate: $0) : try ES512PublicKey(pem: $0) }),
        ]
        for (curve, make) in ecKeys {
            guard let ecKey = try? make(pem) else { continue }
            guard family == .ecdsa(curve: curve) else { throw mismatch("an EC \(curve) public key") }
            await keys.add(ecdsa: ecKey)
            return keys
        }
        if let edKey = try? EdDSA.PublicKey(pem: pem) {
            guard family == .eddsa else { throw mismatch("an Ed25519 public key") }
            await keys.add(eddsa: edKey)
            return keys
        }
        throw JWTFailure(
            .invalidKey,
            "the PEM is not an RSA (2048 bits or more), EC P-256/384/521 or Ed25519 public key or certificate"
        )
    }

    /// The JWK for `keyID`; with no `kid` in the token, the only key, or the only key of the right kind.
    private static func selectJWK(json: String, keyID: String?, family: JWTAlgorithmFamily, algorithm: String) throws -> JWK {
        guard let set = try? JSONValue.parse(json), let entries = set["keys"]?.arrayValue else {
            throw JWTFailure(.invalidKey, "the JWKS is not a JSON object with a \"keys\" array")
        }
        let candidates: [JSONValue]
        if let keyID {
            candidates = entries.filter { $0["kid"]?.stringValue == keyID }
            guard !candidates.isEmpty else { throw JWTFailure(.noKeyForKID, "no key for kid \(keyID.debugDescription)") }
        } else {
            let fitting = entries.filter { Self.jwk($0, fits: family) }
            guard fitting.count == 1 || entries.count == 1 else {
                throw JWTFailure(
                    .noKeyForKID,
                    "the token has no kid and the JWKS holds \(fitting.count) keys for \(algorithm): cannot choose"
                )
            }
            candidates = fitting.isEmpty ? entries : fitting
        }
        let entry = candidates[0]
        guard jwk(entry, fits: family) else {
            let kind = entry["kty"]?.stringValue ?? "unknown"
            throw JWTFailure(.algorithmMismatch, "algorithm \(algorithm) needs \(family.keyKind), but the JWK is of kty \(kind)")
        }
        if let jwkAlg = entry["alg"]?.stringValue, jwkAlg != algorithm {
            throw JWTFailure(.algorithmMismatch, "the token says \(algorithm) but its JWK is for \(jwkAlg)")
        }
        do {
            var jwk = try JSONDecoder().decode(JWK.self, from: Data(entry.jsonText.utf8))
            // jwt-kit files keys by kid; one without a kid gets a local name (it is the only key anyway).
            if jwk.keyIdentifier == nil { jwk.keyIdentifier = JWKIdentifier(string: "siotap:selected") }
            return jwk
        } catch {
            throw JWTFailure(.invalidKey, "the JWK cannot be read: \(error)")
        }
    }

    private static func jwk(_ entry: JSONValue, fits family: JWTAlgorithmFamily) -> Bool {
        switch (entry["kty"]?.stringValue, family) {
        case ("RSA", .rsa), ("RSA", .pss), ("OKP", .eddsa), ("oct", .hmac): return true
        case ("EC", .ecdsa(let curve)): return entry["crv"]?.stringValue == curve
        default: return false
        }
    }
}
