import ArgumentParser
import Foundation
import DemoApps
import SocketIOServer
import SocketIOTransport
import TrafficCapture
import TrafficReplay

struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Play a capture's client side against a server and show how the server's answers differ.",
        discussion: """
            Every conn of the capture gets a client (same Engine.IO version and query, over the \
            transports it was recorded on: WebSocket, polling, or polling then the upgrade) \
            that sends the recorded client packets in order, ack ids as recorded, keeping the capture's \
            order across connections: a packet goes once the server packets recorded before it have \
            come, or nothing has come for --timeout-ms (a broadcast recorded just before the emit that \
            caused it, as older captures can hold, is not waited for). The server's packets are \
            compared with the recorded ones after normalising what changes on every run (CONNECT sids \
            and pids, re-minted tokens' dates) and any --ignore path.

            --target names the server to replay against (https:// with --upstream-ca or --insecure \
            as the proxy has them). Without it, the built-in server runs in-process with --app, or \
            with the app a capture of siotap demo names; any other capture asks for --target.

            A capture made with siotap proxy --fault has "fault" records; replay ignores them unless \
            --with-faults, which sends the server what it got through the faulty proxy: no packet the \
            proxy dropped or refused, rewritten ones as rewritten.

            Exit codes: 0 no difference; 1 differences, or conns the target refused (the report \
            says what it answered); 2 wrong arguments, an unreadable capture, or no --target for \
            another server's capture; 3 the target could not be reached, so nothing was replayed.

            Examples:
              siotap replay demo.jsonl --jwt-secret siotap-demo-secret-0123456789abcdef
              siotap replay fixtures/chat.jsonl --target http://localhost:3001 --ignore 'args[0].timestamp'
              siotap replay session.jsonl --app conformance --json
              siotap replay session.jsonl --report diff.json; siotap view session.jsonl --report diff.json
            """
    )

    @Argument(help: "The capture to replay.")
    var capture: String

    @Option(help: "The server to replay against (http://HOST:PORT, or with the Engine.IO path: http://HOST:PORT/app/socket.io/); none: the built-in one. Without a path each conn replays on the path it was recorded on.", transform: UpstreamURL.init)
    var target: UpstreamURL?

    @Option(help: "Replay against the built-in server running this app (a capture of siotap demo names its own).")
    var app: DemoApp?

    @Option(name: .customLong("upstream-ca"), help: "PEM file of the CA(s) to trust for an https --target, instead of the system's trust store.")
    var upstreamCA: String?

    @Flag(help: "Do not verify an https --target's certificate.")
    var insecure = false

    @Option(name: .customLong("jwt-secret"), help: "Re-mint the capture's tokens with this secret (times shifted to now); also the built-in chat app's secret.")
    var jwtSecret: String?

    @Option(
        name: .customLong("jwt-key"),
        help: "Re-mint the capture's tokens with this PEM private key (RSA: RS*/PS*, EC: ES256/384/512, Ed25519: EdDSA), claims and kid kept, times shifted to now."
    )
    var jwtKey: String?

    @Option(help: "A JSON path to leave out of the comparison (args[0].timestamp, data.id, *.id); repeatable.")
    var ignore: [String] = []

    @Option(name: .customLong("timeout-ms"), help: "How long to wait while no expected packet comes.")
    var timeoutMs = 3_000

    @Flag(name: .customLong("with-faults"), help: "Play the capture's fault records again (see above).")
    var withFaults = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    @Option(help: "Also write the report as JUnit XML (a test case per conn), for CI.")
    var junit: String?

    @Option(help: "Also write the report as JSON (what --json prints) to this file; siotap view --report shows it beside the capture.")
    var report: String?

    func validate() throws {
        if target != nil, app != nil { throw ValidationError("--app runs the built-in server: not with --target") }
        if jwtSecret != nil, jwtKey != nil { throw ValidationError("Give --jwt-secret or --jwt-key, not both.") }
    }

    func run() async throws {
        let io = CommandIO.current
        let (records, problems) = try readCapture()
        for problem in problems { io.writeError("siotap replay: \(capture): \(problem)\n") }
        let tls = try target.flatMap { try TLSOptions.upstream($0, caFile: upstreamCA, insecure: insecure, io: io) }
        if target == nil, upstreamCA != nil || insecure { throw ValidationError("--upstream-ca and --insecure are for an https:// --target") }
        let app = try builtInApp(for: records, io: io)
        let tokenKey = try self.tokenKey()
        // A capture of siotap demo holds tokens of the demo's secret: its chat app checks them with it.
        let demoCapture = self.app == nil && app == .chat
        let secret = jwtSecret ?? io.environment["JWT_SECRET"] ?? (demoCapture ? DemoCommand.secret : ChatApp.defaultSecret)
        // The built-in server speaks the capture's parser (a msgpack session's record says msgpack),
        // and recovers connection state when the capture's sessions did.
        let configuration = SocketIOServer.Configuration(
            parser: Replayer.parser(of: records), recoveryMilliseconds: Replayer.usesRecovery(records) ? 120_000 : nil
        )
        let server = try await TargetServer(target: target, tls: tls, configuration: configuration) { builtIn in
            switch app {
            case .chat, nil: ChatApp.install(on: builtIn, secret: secret)
            case .conformance: ConformanceApp.install(on: builtIn)
            }
        }
        if let target {
            do { try await server.reachable() } catch {
                throw CommandFailure(.unreachable, "could not reach \(target): \(error.detail); nothing was replayed")
            }
        }
        let report = await Replayer.run(
            records,
            options: .init(
                host: server.host, port: server.port, path: server.path, ignoredPaths: ignore, timeoutMilliseconds: timeoutMs, jwtSecret: jwtSecret,
                tokenKey: tokenKey, withFaults: withFaults, tls: tls
            )
        )
        await server.stop()
        io.write(json ? report.json.jsonText + "\n" : Self.readable(report, style: Styling(enabled: io.colors)))
        if let reportFile = self.report {
            do { try (report.json.jsonText + "\n").write(toFile: reportFile, atomically: true, encoding: .utf8) } catch {
                throw CommandFailure("cannot write \(reportFile): \(error)")
            }
        }
        if let junit {
            do { try report.junit(capture: capture).write(toFile: junit, atomically: true, encoding: .utf8) } catch {
                throw CommandFailure("cannot write \(junit): \(error)")
            }
        }
        if !report.isEqual { throw ExitCode(SiotapCLI.Exit.checkFailed) }
    }

    /// `--jwt-key`'s private key, read and checked before anything runs.
    private func tokenKey() throws -> TokenRefresher.Key? {
        guard let jwtKey else { return nil }
        guard let data = FileManager.default.contents(atPath: jwtKey) else { throw CommandFailure(.badInput, "--jwt-key: cannot read \(jwtKey)") }
        let key = TokenRefresher.Key.pem(String(decoding: data, as: UTF8.self))
        do { try TokenRefresher.check(key) } catch { throw CommandFailure(.badInput, "--jwt-key \(jwtKey): \(error)") }
        return key
    }

    /// The built-in server's app when there is no --target: --app, else the one the capture's
    /// sessions name (siotap demo's); a capture of another server is not replayed against an app
    /// that never answered it.
    private func builtInApp(for records: [CaptureRecord], io: CommandIO) throws -> DemoApp? {
        guard target == nil else { return nil }
        if let app {
            io.writeError("siotap replay: against the built-in server's \(app.rawValue) app (--app)\n")
            return app
        }
        let sessions = records.compactMap { record -> SessionRecord? in if case .session(let session) = record.body { session } else { nil } }
        let named = Set(sessions.map(\.app))
        if named.count == 1, let name = named.first ?? nil, let app = DemoApp(rawValue: name) {
            io.writeError("siotap replay: against the built-in server's \(app.rawValue) app, which the capture was made against\n")
            return app
        }
        let servers = Set(sessions.compactMap(\.upstream)).sorted()
        throw CommandFailure(
            .badInput,
            "\(capture) was recorded against \(servers.isEmpty ? "a server it does not name" : servers.joined(separator: ", ")): "
                + "replay it against that server with --target URL, or against siotap's built-in server with --app chat|conformance"
        )
    }

    private func readCapture() throws -> ([CaptureRecord], [CaptureReadError]) {
        do {
            let result = try CaptureReader.readAll(path: capture)
            guard !result.records.isEmpty else { throw CommandFailure(.badInput, "\(capture) holds no records") }
            return result
        } catch let error as CaptureReadError {
            throw CommandFailure(.badInput, "\(error)")
        }
    }

    static func readable(_ report: Replayer.Report, style: Styling) -> String {
        report.lines { kind, text in
            switch kind {
            case "bad": style.red(text)
            case "good": style.green(text)
            case "warn": style.yellow(text)
            default: style.bold(text)
            }
        }.joined(separator: "\n") + "\n"
    }
}
