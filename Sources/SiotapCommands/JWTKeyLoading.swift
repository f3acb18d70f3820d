import ArgumentParser
import Foundation
import JWTInspection

enum JWTKeyLoading {
    /// The key named by at most one of the three options; a file is read whole.
    static func key(secret: String?, pemFile: String?, jwksFile: String?, flags: (String, String, String)) throws -> JWTVerificationKey? {
        let given = [secret != nil, pemFile != nil, jwksFile != nil].filter { $0 }.count
        guard given <= 1 else {
            throw ValidationError("Give one of \(flags.0), \(flags.1) and \(flags.2), not several.")
        }
        if let secret { return .secret(secret) }
        if let pemFile { return .pem(try read(pemFile, flag: flags.1)) }
        if let jwksFile { return .jwks(try read(jwksFile, flag: flags.2)) }
        return nil
    }

    private static func read(_ path: String, flag: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw CommandFailure(.badInput, "\(flag): cannot read \(path)")
        }
        return text
    }
}

/// The token-verification options `decode` and `proxy` share.
struct JWTKeyOptions: ParsableArguments {
    @Option(name: .customLong("jwt-secret"), help: "Verify tokens with this HMAC secret (HS256/384/512).")
    var jwtSecret: String?

    @Option(name: .customLong("jwt-key"), help: "Verify tokens with this PEM public key (or certificate) file.")
    var jwtKey: String?

    @Option(help: "Verify tokens with the keys of this JWKS file (chosen by kid).")
    var jwks: String?

    @Option(help: "Seconds of clock skew allowed for exp and nbf.")
    var leeway: Double = 0

    func key() throws -> JWTVerificationKey? {
        try JWTKeyLoading.key(secret: jwtSecret, pemFile: jwtKey, jwksFile: jwks, flags: ("--jwt-secret", "--jwt-key", "--jwks"))
    }
}
