import ArgumentParser
import JWTInspection
import TrafficCapture

struct JWTCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jwt",
        abstract: "Explain a JWT: header, claims, times, and (given a key) whether it verifies.",
        discussion: """
            Without a key the token is decoded only. With --secret (HS256/384/512, any length), --key (a \
            PEM public key or certificate: RSA for RS*/PS*, EC for ES*, Ed25519 for EdDSA) or --jwks (a \
            JWK Set; the key is chosen by the token's kid) it is verified: signature, then nbf and exp. \
            alg "none" is always refused; an HS token is never checked against a public key.

            Exit codes: 0 verified, or decoded when no key was given; 1 not verified; 2 malformed token \
            or wrong arguments.

            Examples:
              siotap jwt eyJhbGciOiJIUzI1NiJ9.eyJpZCI6NDJ9.…
              siotap jwt "$TOKEN" --secret your-secret-key
              siotap jwt "$TOKEN" --key public.pem --leeway 30
              siotap jwt "$TOKEN" --jwks jwks.json --json | jq .claims
              echo "$TOKEN" | siotap jwt -
            """
    )

    @Argument(help: "The token; - or nothing reads it from standard input. A leading 'Bearer ' is ignored.")
    var token: String?

    @Option(help: "HMAC secret for HS256/384/512.")
    var secret: String?

    @Option(help: "PEM file with a public key or certificate.")
    var key: String?

    @Option(help: "JWK Set file.")
    var jwks: String?

    @Option(help: "Seconds of clock skew allowed for exp and nbf.")
    var leeway: Double = 0

    @Flag(help: "Print JSON even on a terminal.")
    var json = false

    func run() async throws {
        let io = CommandIO.current
        let verificationKey = try JWTKeyLoading.key(secret: secret, pemFile: key, jwksFile: jwks, flags: ("--secret", "--key", "--jwks"))
        var text = token ?? "-"
        if text == "-" {
            guard let lines = io.readLines(), let first = lines.first(where: { !$0.isEmpty }) else {
                throw ValidationError("Give a token as the argument, or pipe it in.")
            }
            text = first
        }
        text = text.trimmingPrefix(" ").split(separator: " ").last.map(String.init) ?? text
        let report = await JWTInspector(key: verificationKey, leewaySeconds: leeway).inspect(text)
        if json || !io.colors {
            io.write(Self.json(report).jsonText + "\n")
        } else {
            io.write(Self.readable(report, style: Styling(enabled: io.colors)))
        }
        if report.isMalformed { throw ExitCode(SiotapCLI.Exit.usage) }
        if report.verified == false { throw ExitCode(SiotapCLI.Exit.checkFailed) }
    }

    static func json(_ report: JWTReport) -> JSONValue {
        var members: [JSONObject.Member] = []
        func add(_ key: String, _ value: JSONValue?) {
            if let value { members.append(.init(key: JSONString(key), value: value)) }
        }
        add("header", report.header)
        add("claims", report.claims)
        add("alg", report.algorithm.map { .string($0) })
        add("kid", report.keyID.map { .string($0) })
        add("verified", report.verified.map { .bool($0) } ?? .null)
        add("reason", report.failure.map { .string($0.message) })
        add("reason_code", report.failure.map { .string($0.code.rawValue) })
        add("key", report.keyDescription.map { .string($0) })
        add("exp", report.expiresAt.map { .string($0) })
        add("iat", report.issuedAt.map { .string($0) })
        add("nbf", report.notBefore.map { .string($0) })
        add("expires_in_s", report.expiresInSeconds.flatMap { JSONNumber($0) }.map { .number($0) })
        add("leeway_s", JSONNumber(report.leewaySeconds).map { .number($0) })
        add("warnings", .array(report.warnings.map { .string($0) }))
        return .object(JSONObject(members))
    }

    static func readable(_ report: JWTReport, style: Styling) -> String {
        var lines: [String] = []
        switch report.verified {
        case true?: lines.append(style.green(style.bold("✓ verified")) + style.dim(" with \(report.keyDescription ?? "the key")"))
        case false?: lines.append(style.red(style.bold("✗ \(report.failure?.message ?? "not verified")")))
        case nil: lines.append(style.yellow("? not verified: no key given (--secret, --key or --jwks)"))
        }
        if report.isMalformed { return lines.joined(separator: "\n") + "\n" }
        lines.append(style.bold("header ") + report.header.jsonText)
        lines.append(style.bold("claims ") + report.claims.jsonText)
        func time(_ label: String, _ value: String?) {
            if let value { lines.append(style.bold(label) + value) }
        }
        if let exp = report.expiresAt {
            let left = report.expiresInSeconds.map { " (\(formatRemaining($0)))" } ?? ""
            lines.append(style.bold("exp    ") + exp + (report.expiresInSeconds.map { $0 < 0 } == true ? style.red(left) : style.dim(left)))
        }
        time("iat    ", report.issuedAt)
        time("nbf    ", report.notBefore)
        if report.leewaySeconds > 0 { lines.append(style.dim("leeway \(report.leewaySeconds) s")) }
        for warning in report.warnings { lines.append(style.yellow("! \(warning)")) }
        return lines.joined(separator: "\n") + "\n"
    }
}
