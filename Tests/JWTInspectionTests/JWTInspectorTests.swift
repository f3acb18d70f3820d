import Crypto
import Foundation
import JWTKit
import SocketIOProtocol
import PeerSupport
import Testing
@testable import JWTInspection

@Suite("JWT inspection")
struct JWTInspectorTests {
    @Test("Tokens made by PyJWT, every algorithm family and every way to fail")
    func pyJWTTokens() async throws {
        let output = try PeerPaths.runPython("make_tokens.py")
        let cases = try #require(try JSONValue.parse(bytes: output)["cases"]?.arrayValue)
        #expect(cases.count >= 30)
        for testCase in cases {
            let name = testCase["name"]?.stringValue ?? "?"
            let token = try #require(testCase["token"]?.stringValue)
            var key: JWTVerificationKey?
            if let secret = testCase["key"]?["secret"]?.stringValue { key = .secret(secret) }
            if let pem = testCase["key"]?["pem"]?.stringValue { key = .pem(pem) }
            if let jwks = testCase["key"]?["jwks"]?.stringValue { key = .jwks(jwks) }
            let report = await JWTInspector(key: key).inspect(token)
            #expect(report.verified == testCase["verified"]?.boolValue, "\(name): \(report.failure?.message ?? "verified")")
            #expect(report.failure?.code.rawValue == testCase["code"]?.stringValue, "\(name): \(report.failure?.message ?? "-")")
            if report.failure?.code != .malformed {
                // The tampered token carries id 1 under a signature made for 42.
                #expect(report.claims["id"] == .number(name == "tampered claims" ? 1 : 42), "\(name)")
                #expect(report.claims["name"]?.stringValue == "ada", "\(name)")
            }
        }
    }

    @Test("Tokens made by jwt-kit with an RSA key: RS256 and PS256")
    func jwtKitRSA() async throws {
        struct Claims: JWTPayload {
            var sub: SubjectClaim
            func verify(using algorithm: some JWTAlgorithm) async throws {}
        }
        let output = try JSONValue.parse(bytes: try PeerPaths.runPython("make_tokens.py"))
        let privatePEM = try #require(output["rsa_private_pem"]?.stringValue)
        let publicPEM = try #require(output["rsa_public_pem"]?.stringValue)
        let key = try Insecure.RSA.PrivateKey(pem: privatePEM)
        for (pss, alg) in [(false, "RS256"), (true, "PS256")] {
            let keys = JWTKeyCollection()
            if pss { await keys.add(pss: key, digestAlgorithm: .sha256) } else { await keys.add(rsa: key, digestAlgorithm: .sha256) }
            let token = try await keys.sign(Claims(sub: "rsa-user"))
            let report = await JWTInspector(key: .pem(publicPEM)).inspect(token)
            #expect(report.algorithm == alg)
            #expect(report.verified == true, "\(alg): \(report.failure?.message ?? "")")
            #expect(report.subject == "rsa-user")
        }
    }

    @Test("Tokens siotap signs with a PEM private key verify with jwt-kit, claims text kept; a key signs only its own family")
    func mintedWithPrivateKeys() async throws {
        let output = try JSONValue.parse(bytes: try PeerPaths.runPython("make_tokens.py"))
        let rsaPrivate = try #require(output["rsa_private_pem"]?.stringValue)
        let rsaPublic = try #require(output["rsa_public_pem"]?.stringValue)
        let p256 = P256.Signing.PrivateKey()
        let p384 = P384.Signing.PrivateKey()
        let p521 = P521.Signing.PrivateKey()
        let ed = Curve25519.Signing.PrivateKey()
        // Ed25519 in PKCS#8 and SPKI, as openssl writes them.
        func pem(_ label: String, _ der: [UInt8]) -> String {
            "-----BEGIN \(label)-----\n\(Data(der).base64EncodedString())\n-----END \(label)-----\n"
        }
        let edPrivate = pem("PRIVATE KEY", [0x30, 0x2E, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20] + ed.rawRepresentation)
        let edPublic = pem("PUBLIC KEY", [0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x03, 0x21, 0x00] + ed.publicKey.rawRepresentation)
        let claims = try JSONValue.parse(#"{"sub":"user-1","n":1.50,"exp":4102444800}"#)
        let cases: [(String, String?, String, String)] = [
            (rsaPrivate, nil, rsaPublic, "RS256"), (rsaPrivate, "RS512", rsaPublic, "RS512"), (rsaPrivate, "PS256", rsaPublic, "PS256"),
            (p256.pemRepresentation, nil, p256.publicKey.pemRepresentation, "ES256"),
            (p384.pemRepresentation, nil, p384.publicKey.pemRepresentation, "ES384"),
            (p521.pemRepresentation, nil, p521.publicKey.pemRepresentation, "ES512"),
            (edPrivate, nil, edPublic, "EdDSA"),
        ]
        for (privatePEM, asked, publicPEM, algorithm) in cases {
            let key = try JWTSigningKey.pem(privatePEM, algorithm: asked)
            #expect(key.algorithm == algorithm)
            let token = try JWTMinter.sign(claims: claims, key: key)
            let report = await JWTInspector(key: .pem(publicPEM)).inspect(token)
            #expect(report.algorithm == algorithm)
            #expect(report.verified == true, "\(algorithm): \(report.failure?.message ?? "")")
            #expect(report.claims.jsonText == #"{"sub":"user-1","n":1.50,"exp":4102444800}"#)
        }
        #expect(throws: JWTSigningKey.Failure.self) { try JWTSigningKey.pem(p256.pemRepresentation, algorithm: "ES384") }
        #expect(throws: JWTSigningKey.Failure.self) { try JWTSigningKey.pem(rsaPrivate, algorithm: "EdDSA") }
        #expect(throws: JWTSigningKey.Failure.self) { try JWTSigningKey.pem(rsaPublic) }
        #expect(throws: JWTSigningKey.Failure.self) { try JWTSigningKey.secret("s", algorithm: "RS256") }
    }

    @Test("Tokens made by jwt-kit: HMAC, ECDSA and EdDSA")
    func jwtKitTokens() async throws {
        struct Claims: JWTPayload {
            var sub: SubjectClaim
            var exp: ExpirationClaim
            func verify(using algorithm: some JWTAlgorithm) async throws {}
        }
        let claims = Claims(sub: "user-7", exp: .init(value: Date().addingTimeInterval(600)))
        let secret = "a-secret-of-thirty-two-bytes-ok!"
        let hmacKeys = await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        let hs = try await hmacKeys.sign(claims)
        #expect(await JWTInspector(key: .secret(secret)).inspect(hs).verified == true)
        #expect(await JWTInspector(key: .secret(secret + "x")).inspect(hs).failure?.code == .badSignature)

        let ecKey = ES256PrivateKey()
        let es = try await JWTKeyCollection().add(ecdsa: ecKey).sign(claims)
        let ecReport = await JWTInspector(key: .pem(ecKey.publicKey.pemRepresentation)).inspect(es)
        #expect(ecReport.verified == true)
        #expect(ecReport.subject == "user-7")
        #expect(ecReport.expiresInSeconds.map { $0 > 590 && $0 <= 600 } == true)

        let edKey = try EdDSA.PrivateKey()
        let ed = try await JWTKeyCollection().add(eddsa: edKey).sign(claims)
        let edPEM = edKey.publicKey.pemRepresentation
        #expect(await JWTInspector(key: .pem(edPEM)).inspect(ed).verified == true)
        #expect(await JWTInspector(key: .pem(ecKey.publicKey.pemRepresentation)).inspect(ed).failure?.code == .algorithmMismatch)
    }

    @Test("Times that are no date (fuzzer finding: exp 18E5579220 trapped) are said so, never formatted", arguments: [
        // The fuzzer's input: exp overflows a Double.
        "eyJhbGciOiJIUzI1VCJ9.eyJpZCI6NywiaWF0IjoxNzk1Nzc1NjIwLCJleHAiOjE4RTU1NzkyMjB9.",
    ])
    func outOfRangeTimes(token: String) async throws {
        let report = await JWTInspector().inspect(token, now: 1_795_775_700)
        #expect(report.expiresAt == nil && report.expiresInSeconds == nil)
        #expect(report.issuedAt == "2026-11-27T10:33:40Z")
        #expect(report.warnings.contains("exp 18E5579220 is not a date between the years 1 and 9999"))
        #expect(!report.warnings.contains { $0.hasPrefix("no exp claim") })
    }

    @Test("A verified token whose exp lies before the year 1 is expired, at the time it says")
    func expiredBeforeYearOne() async throws {
        let secret = "a-secret-long-enough-for-hs256-tokens!"
        func url(_ bytes: [UInt8]) -> String {
            String(Base64.encode(bytes).replacing("+", with: "-").replacing("/", with: "_").prefix { $0 != "=" })
        }
        func part(_ text: String) -> String { url(Array(text.utf8)) }
        let signingInput = part(#"{"alg":"HS256","typ":"JWT"}"#) + "." + part(#"{"id":1,"exp":-1e300,"nbf":1e300}"#)
        let signature = HMAC<SHA256>.authenticationCode(for: Array(signingInput.utf8), using: SymmetricKey(data: Array(secret.utf8)))
        let token = signingInput + "." + url(Array(signature))
        let report = await JWTInspector(key: .secret(secret)).inspect(token)
        #expect(report.verified == false)
        #expect(report.failure?.message == "expired at -1e300")
        #expect(report.warnings.contains("exp -1e300 is not a date between the years 1 and 9999"))
        #expect(report.warnings.contains("nbf 1e300 is not a date between the years 1 and 9999"))
    }

    @Test("Without a key the token is decoded and its times explained")
    func decodeOnly() async throws {
        let token = try makeHS256(#"{"alg":"HS256","typ":"JWT"}"#, #"{"sub":"u1","big":12345678901234567890,"iat":1700000000,"nbf":1700000000,"exp":1700003600}"#, secret: "s")
        let report = await JWTInspector().inspect(token, now: 1_700_000_600)
        #expect(report.verified == nil)
        #expect(report.failure == nil)
        #expect(report.expiresAt == "2023-11-14T23:13:20Z")
        #expect(report.issuedAt == "2023-11-14T22:13:20Z")
        #expect(report.notBefore == "2023-11-14T22:13:20Z")
        #expect(report.expiresInSeconds == 3000)
        #expect(report.claims.jsonText.contains("12345678901234567890"))  // the wire text, not a rounded double
        #expect(report.warnings.isEmpty)
    }

    @Test("Leeway stretches exp and nbf, and only by that much")
    func leeway() async throws {
        let token = try makeHS256(#"{"alg":"HS256"}"#, #"{"exp":1000,"nbf":900}"#, secret: "k")
        #expect(await JWTInspector(key: .secret("k")).inspect(token, now: 1010).failure?.code == .expired)
        #expect(await JWTInspector(key: .secret("k"), leewaySeconds: 30).inspect(token, now: 1010).verified == true)
        #expect(await JWTInspector(key: .secret("k"), leewaySeconds: 30).inspect(token, now: 1031).failure?.message == "expired at 1970-01-01T00:16:40Z")
        #expect(await JWTInspector(key: .secret("k")).inspect(token, now: 890).failure?.code == .notYetValid)
        #expect(await JWTInspector(key: .secret("k"), leewaySeconds: 15).inspect(token, now: 890).verified == true)
    }

    @Test("Warnings: no exp, a long lifetime")
    func warnings() async throws {
        let forever = try makeHS256(#"{"alg":"HS256"}"#, #"{"sub":"x"}"#, secret: "k")
        #expect(await JWTInspector().inspect(forever).warnings.contains { $0.contains("no exp") })
        let long = try makeHS256(#"{"alg":"HS256"}"#, #"{"iat":0,"exp":864000}"#, secret: "k")
        #expect(await JWTInspector().inspect(long, now: 1).warnings.contains { $0.contains("long lifetime") })
    }

    @Test("A time claim that is no number, and an unknown crit: warned about without a key, never verified with one")
    func claimsOfTheWrongTypeAndCrit() async throws {
        for claims in [#"{"exp":"0"}"#, #"{"exp":null}"#, #"{"exp":9999999999,"nbf":[1]}"#, #"{"iat":{"a":1},"exp":9999999999}"#] {
            let token = try makeHS256(#"{"alg":"HS256"}"#, claims, secret: "k")
            let unchecked = await JWTInspector().inspect(token, now: 1)
            #expect(unchecked.verified == nil && unchecked.warnings.contains { $0.contains("not a number of seconds") }, "\(claims)")
            let checked = await JWTInspector(key: .secret("k")).inspect(token, now: 1)
            #expect(checked.verified == false && checked.failure?.code == .invalidTimeClaim, "\(claims): \(checked.failure?.message ?? "verified")")
        }
        for header in [#"{"alg":"HS256","crit":["b64"]}"#, #"{"alg":"HS256","crit":"exp"}"#, #"{"alg":"HS256","crit":[]}"#] {
            let token = try makeHS256(header, #"{"exp":9999999999}"#, secret: "k")
            #expect(await JWTInspector().inspect(token, now: 1).warnings.contains { $0.contains("crit lists") }, "\(header)")
            let checked = await JWTInspector(key: .secret("k")).inspect(token, now: 1)
            #expect(checked.verified == false && checked.failure?.code == .unsupportedCritical, "\(header)")
        }
        let plain = try makeHS256(#"{"alg":"HS256"}"#, #"{"exp":9999999999,"iat":1}"#, secret: "k")
        #expect(await JWTInspector(key: .secret("k")).inspect(plain, now: 1).verified == true)
    }

    @Test("Malformed tokens are refused with a reason, never a crash", arguments: [
        "", "abc", "a.b", "a.b.c.d", "!!!.e30.x", "e30.!!!.x", "bm90IGpzb24.e30.x", "W10.e30.x", "e30.W10.x",
        "eyJhbGciOiJIUzI1NiJ9.eyJhIjoxfQ.%%%",
    ])
    func malformed(token: String) async {
        let report = await JWTInspector(key: .secret("k")).inspect(token)
        #expect(report.verified == false)
        #expect(report.failure?.code == .malformed)
    }

    @Test("A header without alg, an unknown alg, an unreadable key")
    func oddHeadersAndKeys() async throws {
        let noAlg = try makeHS256(#"{"typ":"JWT"}"#, #"{}"#, secret: "k")
        #expect(await JWTInspector(key: .secret("k")).inspect(noAlg).failure?.code == .malformed)
        let odd = try makeHS256(#"{"alg":"XS999"}"#, #"{}"#, secret: "k")
        #expect(await JWTInspector(key: .secret("k")).inspect(odd).failure?.code == .unsupportedAlgorithm)
        let rs = try makeHS256(#"{"alg":"RS256"}"#, #"{}"#, secret: "k")
        #expect(await JWTInspector(key: .pem("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----")).inspect(rs).failure?.code == .invalidKey)
        #expect(await JWTInspector(key: .jwks("{}")).inspect(rs).failure?.code == .invalidKey)
    }

    @Test("looksLikeJWT finds tokens and ignores other dotted strings")
    func detection() throws {
        #expect(JWTText.looksLikeJWT(try makeHS256(#"{"alg":"HS256"}"#, #"{"a":1}"#, secret: "k")))
        #expect(!JWTText.looksLikeJWT("www.example.com"))
        #expect(!JWTText.looksLikeJWT("1.2.3"))
        #expect(!JWTText.looksLikeJWT("e30.e30.x"))  // a header without alg
    }
}

/// An HS256 token with exactly this header and claims text.
func makeHS256(_ header: String, _ claims: String, secret: String) throws -> String {
    let input = Base64.encodeURL(Array(header.utf8)) + "." + Base64.encodeURL(Array(claims.utf8))
    let signature = HMACSignature.sign(Array(input.utf8), secret: Array(secret.utf8))
    return input + "." + Base64.encodeURL(signature)
}

enum HMACSignature {
    static func sign(_ input: [UInt8], secret: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: input, using: SymmetricKey(data: secret)))
    }
}
