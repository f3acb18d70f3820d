import ArgumentParser
import Foundation
import JWTInspection
import SocketIOClient
import DemoApps
import SocketIOServer
import Synchronization
import TrafficCapture

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Load a Socket.IO server with echo round trips and print throughput and latency percentiles.",
        discussion: """
            N clients connect and each sends M messages of SIZE bytes to the conformance contract's \
            echo (`message` answered by `message-back`, or with --ack `message-with-ack` answered by \
            an ack), one at a time per client, all clients at once. Latency is each round trip. \
            With no --target, the built-in conformance app runs in-process on a free port. \
            --rate paces each client (a round trip starts every 1/RATE s, or at once if the last \
            one took longer); --duration runs for a time instead of a count, with progress on \
            stderr every 10 s (a soak: Benchmarks/soak.sh).

            Behind auth middleware: --auth sends a CONNECT payload; --jwt-secret (HS256) or --jwt-key \
            (a PEM private key: RS256, ES256/384/512 or EdDSA by the key, --jwt-alg for another of its \
            family) mints a token per client (issued now, valid an hour unless --claim exp= says otherwise) with the \
            --claim KEY=VALUE claims (VALUE as JSON when it reads as JSON, else a string; {n} is the \
            client's number, from 1), and sends it as auth.token, where the seed guide's middleware \
            reads it. --emit and --reply name another app's echo (the seed's chat answers message with \
            chat response). Refused connections (the server's CONNECT_ERROR) are counted apart from \
            failed ones (no session, a reset); the clients that connected go on.

            Exit codes: 0 every round trip completed; 1 some did not, or a client was refused or could \
            not connect (the counts and the first reason of each are printed), or the target could \
            not be reached; 2 wrong arguments.

            Examples:
              siotap bench --clients 50 --messages 200
              siotap bench --target http://127.0.0.1:8080 --transport polling --ack --json
              siotap bench --clients 1 --rate 1000 --messages 5000
              siotap bench --target http://127.0.0.1:8081 --clients 1000 --rate 1 --duration 600
              siotap bench --target http://localhost:3001 --jwt-secret "$JWT_SECRET" --claim 'id={n}' --claim name=bench \\
                --emit message --reply 'chat response'
              siotap bench --target http://localhost:3001 --jwt-key private.pem --claim 'sub=user{n}'
            """
    )

    @Option(help: "The server (or proxy) to load: http://HOST:PORT, with the Engine.IO path if it is not /socket.io/; none: the built-in conformance app.", transform: UpstreamURL.init)
    var target: UpstreamURL?

    @Option(help: "Concurrent clients.")
    var clients = 10

    @Option(help: "Round trips per client.")
    var messages = 1_000

    @Option(help: "Round trips per second per client (paced); none: as fast as the answers come.")
    var rate: Double?

    @Option(help: "Run for this many seconds instead of --messages round trips.")
    var duration: Double?

    @Option(help: "Payload bytes per message.")
    var size = 100

    @Option(help: "websocket or polling.")
    var transport: EngineTransport = .websocket

    @Flag(help: "Use acknowledgements instead of echo events.")
    var ack = false

    @Flag(help: "Print the result as JSON.")
    var json = false

    @Option(help: "The CONNECT payload for / (a JSON object), e.g. '{\"token\":\"…\"}'.", transform: { text in
        guard let value = try? JSONValue.parse(text), value.objectValue != nil else { throw ValidationError("--auth takes a JSON object, not \(text)") }
        return value
    })
    var auth: JSONValue?

    @Option(name: .customLong("jwt-secret"), help: "Mint an HS256 token per client with this secret, sent as auth.token.")
    var jwtSecret: String?

    @Option(name: .customLong("jwt-key"), help: "Mint a token per client signed with this PEM private key (RSA, EC or Ed25519), sent as auth.token.")
    var jwtKey: String?

    @Option(name: .customLong("jwt-alg"), help: "The algorithm --jwt-key or --jwt-secret signs with (default: RS256, ES256/384/512 or EdDSA by the key; HS256).")
    var jwtAlgorithm: String?

    @Option(name: .customLong("claim"), help: "A claim of the minted token, KEY=VALUE ({n}: the client's number); repeatable.")
    var claims: [String] = []

    @Option(help: "The event each round trip sends (default: message, or message-with-ack with --ack).")
    var emit: String?

    @Option(help: "The event that answers it (without --ack).")
    var reply = "message-back"

    func validate() throws {
        guard clients > 0, messages > 0, size >= 0 else { throw ValidationError("--clients and --messages must be positive") }
        if let rate, rate <= 0 { throw ValidationError("--rate must be positive") }
        if let duration, duration <= 0 { throw ValidationError("--duration must be positive") }
        if jwtSecret != nil, jwtKey != nil { throw ValidationError("Give --jwt-secret or --jwt-key, not both.") }
        if !claims.isEmpty || jwtAlgorithm != nil, jwtSecret == nil, jwtKey == nil {
            throw ValidationError("--claim and --jwt-alg are for the token --jwt-secret or --jwt-key mints")
        }
        for claim in claims where !claim.contains("=") { throw ValidationError("--claim takes KEY=VALUE, not \(claim)") }
    }

    /// What signs the clients' tokens, if they get any.
    func signingKey() throws -> JWTSigningKey? {
        do {
            if let jwtSecret { return try .secret(jwtSecret, algorithm: jwtAlgorithm ?? "HS256") }
            guard let jwtKey else { return nil }
            guard let data = FileManager.default.contents(atPath: jwtKey) else { throw CommandFailure(.badInput, "--jwt-key: cannot read \(jwtKey)") }
            return try .pem(String(decoding: data, as: UTF8.self), algorithm: jwtAlgorithm)
        } catch let failure as JWTSigningKey.Failure {
            throw CommandFailure(.badInput, "\(jwtKey.map { "--jwt-key \($0)" } ?? "--jwt-secret"): \(failure)")
        }
    }

    /// Client `number`'s CONNECT payload: --auth, with the token minted for it.
    func connectPayload(client number: Int, now: Double, key: JWTSigningKey?) throws -> JSONValue? {
        guard let key else { return auth }
        var members: [JSONObject.Member] = [.init(key: JSONString("iat"), value: .number(JSONNumber(Int(now))))]
        members.append(.init(key: JSONString("exp"), value: .number(JSONNumber(Int(now) + 3600))))
        for claim in claims {
            let parts = claim.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let text = String(parts[1]).replacingOccurrences(of: "{n}", with: String(number))
            let value = (try? JSONValue.parse(text)) ?? .string(JSONString(text))
            members.removeAll { $0.key.value == String(parts[0]) }
            members.append(.init(key: JSONString(String(parts[0])), value: value))
        }
        let token = try JWTMinter.sign(claims: .object(JSONObject(members)), key: key)
        var payload = auth?.objectValue ?? JSONObject([])
        payload.members.removeAll { $0.key.value == "token" }
        payload.members.append(.init(key: JSONString("token"), value: .string(JSONString(token))))
        return .object(payload)
    }

    func run() async throws {
        let io = CommandIO.current
        let server = try await TargetServer(
            target: target, configuration: .init(engine: EngineConfiguration(maxPayload: max(1_000_000, size * 2))),
            install: { ConformanceApp.install(on: $0) }
        )
        let (host, port) = (server.host, server.port)
        let payload = JSONValue.string(String(repeating: "x", count: size))
        let mode = SocketIOClient.TransportPlan(start: transport)
        var connected: [SocketIOClient] = []
        var connections = BenchResult.Connections()
        let now = CaptureClock.secondsSince1970()
        let key = try signingKey()
        for number in 1...clients {
            connections.attempted += 1
            let client = SocketIOClient(host: host, port: port, path: server.path ?? "/socket.io/")
            do { try await client.open(transport: mode) } catch {
                // The first client that cannot even open a session: the target is not there, or
                // not a Socket.IO server; there is no point trying the others.
                if connections.attempted == 1 { throw CommandFailure("\(error)") }
                connections.failed += 1
                connections.firstError = connections.firstError ?? "\(error)"
                client.close()
                continue
            }
            let reply = await client.connect(auth: try connectPayload(client: number, now: now, key: key))
            guard case .accepted = reply else {
                connections.refused += 1
                let why = if case .refused(let data) = reply { data?.jsonText ?? "no reason given" } else { "" }
                connections.firstRefusal = connections.firstRefusal ?? why
                client.close()
                continue
            }
            connections.connected += 1
            connected.append(client)
        }
        guard !connected.isEmpty else {
            await server.stop()
            if json { io.write(BenchResult(latencies: [], elapsed: 0, expected: clients * messages, connections: connections).json.jsonText + "\n") }
            throw CommandFailure(
                "the server refused the Socket.IO connection to / (\(connections.refused) of \(connections.attempted) clients): \(connections.firstRefusal ?? "")"
                    + (connections.failed > 0 ? "; \(connections.failed) could not connect: \(connections.firstError ?? "")" : "")
                    + (jwtSecret == nil && jwtKey == nil && auth == nil ? " (behind auth middleware? --auth, or --jwt-secret/--jwt-key with --claim)" : "")
            )
        }
        let plan = EchoBench.Plan(count: duration == nil ? messages : Int.max, seconds: duration, interval: rate.map { 1 / $0 })
        let amount = duration.map { "for \($0) s" } ?? "\(clients * messages) round trips"
        io.writeError("siotap bench: \(clients) clients connected to \(host):\(port) over \(transport.rawValue); \(amount) of \(size) bytes\n")
        let start = ContinuousClock.now
        let done = RoundTripCounter()
        let progress = duration == nil ? nil : Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(10))
                guard !Task.isCancelled else { break }
                let seconds = (ContinuousClock.now - start).components.seconds
                io.writeError("siotap bench: \(seconds) s, \(done.count.load(ordering: .relaxed)) round trips\n")
            }
        }
        let latencies = await EchoBench(clients: connected, payload: payload, ack: ack, event: emit, reply: reply).run(plan, done: done)
        progress?.cancel()
        let took = (ContinuousClock.now - start).components
        let elapsed = Double(took.seconds) + Double(took.attoseconds) / 1e18
        for client in connected { client.close() }
        await server.stop()
        let result = BenchResult(
            latencies: latencies, elapsed: elapsed, expected: duration == nil ? clients * messages : latencies.count, connections: connections
        )
        io.write(json ? result.json.jsonText + "\n" : result.text)
        if result.completed < result.expected || connections.connected < connections.attempted { throw ExitCode(SiotapCLI.Exit.checkFailed) }
    }
}
