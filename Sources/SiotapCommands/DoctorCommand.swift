import ArgumentParser
import SocketIOClient
import SocketIOProtocol

struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check a Socket.IO server, and whatever sits in front of it, the way clients will use it: pass, warn or fail, with the fix.",
        discussion: """
            Tries, as a client does: the polling handshake (Engine.IO 4, then 3 for \
            socket.io-client 2.x); the server's pingInterval, pingTimeout and maxPayload; CORS for \
            --origin; sticky sessions (requests of one session, each on a new connection, as a \
            load balancer spreads them); a WebSocket, directly and as an upgrade after polling (a \
            proxy that drops the Upgrade header shows here); a CONNECT to each --namespace with \
            --token or --auth, and the server's verdict; then a connection held idle past \
            pingInterval, to catch an intermediary's idle timeout (--quick skips it: it takes \
            pingInterval, 25 s on a default server). Each step has a deadline (--timeout).

            The failures it finds are those siotap diagnoses in captures (docs/diagnoses.md).

            Exit codes: 0 nothing failed (warnings may be shown); 1 a check failed; 2 wrong \
            arguments.

            Examples:
              siotap doctor http://localhost:3001
              siotap doctor https://chat.example.com --origin https://app.example.com --token "$JWT" --quick
              siotap doctor http://localhost:8000/app/socket.io/ --namespace / --namespace /admin --json
            """
    )

    @Argument(help: "The server: http://HOST:PORT (https:// too), with its Engine.IO path if not /socket.io/.", transform: UpstreamURL.init)
    var target: UpstreamURL

    @Option(help: "A page's origin to check CORS for (https://app.example.com).")
    var origin: String?

    @Option(help: "A token to CONNECT with, sent as auth {\"token\": …}.")
    var token: String?

    @Option(help: "The CONNECT's auth payload as JSON ('{\"token\":\"…\"}').")
    var auth: String?

    @Option(name: .customLong("namespace"), help: "A namespace to CONNECT to; repeatable (default: /).")
    var namespaces: [String] = []

    @Flag(help: "Skip holding an idle connection past pingInterval.")
    var quick = false

    @Option(help: "Seconds each step may take.")
    var timeout: Double = 5

    @Option(name: .customLong("upstream-ca"), help: "PEM file of the CA(s) to trust for an https:// server.")
    var upstreamCA: String?

    @Flag(help: "Do not verify an https:// server's certificate.")
    var insecure = false

    @Flag(help: "The report as JSON: {\"target\", \"checks\": [{\"name\", \"status\", \"detail\", \"fix\"}]}.")
    var json = false

    func validate() throws {
        if token != nil, auth != nil { throw ValidationError("--token and --auth: give one") }
        if let auth, (try? JSONValue.parse(auth))?.objectValue == nil { throw ValidationError("--auth wants a JSON object") }
        guard timeout > 0, timeout <= 300 else { throw ValidationError("--timeout takes 0 to 300 seconds") }
        for nsp in namespaces where !nsp.hasPrefix("/") { throw ValidationError("a namespace starts with /: \(nsp)") }
    }

    func run() async throws {
        let io = CommandIO.current
        var options = ServerCheckup.Options()
        options.path = target.path ?? "/socket.io/"
        options.origin = origin
        options.auth = try auth.map { try JSONValue.parse($0) } ?? token.map { .object(["token": .string($0)]) }
        options.namespaces = namespaces.isEmpty ? ["/"] : namespaces
        options.quick = quick
        options.timeoutSeconds = timeout
        options.tls = try TLSOptions.upstream(target, caFile: upstreamCA, insecure: insecure, io: io)
        let style = Styling(enabled: io.colors && !json)
        let url = target.description + options.path
        if !json { io.write("siotap doctor: \(url)\n") }
        let checks = await ServerCheckup(host: target.host, port: target.port, options: options).run { check in
            guard !json else { return }
            let mark = switch check.status {
            case .pass: style.green("pass")
            case .warn: style.yellow("warn")
            case .fail: style.red("FAIL")
            }
            io.write("  \(mark)  \(check.name): \(check.detail)\n" + (check.fix.map { "        fix: \($0)\n" } ?? ""))
        }
        let failed = checks.filter { $0.status == .fail }.count
        if json {
            let report = JSONValue.object([
                "target": .string(url),
                "checks": .array(checks.map { check in
                    var members: [JSONObject.Member] = [
                        .init(key: JSONString("name"), value: .string(check.name)), .init(key: JSONString("status"), value: .string(check.status.rawValue)),
                        .init(key: JSONString("detail"), value: .string(check.detail)),
                    ]
                    if let fix = check.fix { members.append(.init(key: JSONString("fix"), value: .string(fix))) }
                    return .object(JSONObject(members))
                }),
            ])
            io.write(report.jsonText + "\n")
        } else {
            let warned = checks.filter { $0.status == .warn }.count
            io.write("\(checks.count) checks: \(checks.count - failed - warned) passed, \(warned) warned, \(failed) failed\n")
        }
        if failed > 0 { throw ExitCode(SiotapCLI.Exit.checkFailed) }
    }
}
