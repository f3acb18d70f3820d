import ArgumentParser
import SocketIOClient
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

            Exit codes: 0 every round trip completed; 1 some did not, or the target could not be \
            reached or refused a client (one line on stderr says what it answered); 2 wrong arguments.

            Examples:
              siotap bench --clients 50 --messages 200
              siotap bench --target http://127.0.0.1:8080 --transport polling --ack --json
              siotap bench --clients 1 --rate 1000 --messages 5000
              siotap bench --target http://127.0.0.1:8081 --clients 1000 --rate 1 --duration 600
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

    func validate() throws {
        guard clients > 0, messages > 0, size >= 0 else { throw ValidationError("--clients and --messages must be positive") }
        if let rate, rate <= 0 { throw ValidationError("--rate must be positive") }
        if let duration, duration <= 0 { throw ValidationError("--duration must be positive") }
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
        for _ in 0..<clients {
            let client = SocketIOClient(host: host, port: port, path: server.path ?? "/socket.io/")
            do { try await client.open(transport: mode) } catch { throw CommandFailure("\(error)") }
            let reply = await client.connect()
            guard case .accepted = reply else {
                let why = if case .refused(let data) = reply { data?.jsonText ?? "no reason given" } else { "" }
                throw CommandFailure("the server refused the Socket.IO connection to /: \(why)")
            }
            connected.append(client)
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
        let latencies = await EchoBench(clients: connected, payload: payload, ack: ack).run(plan, done: done)
        progress?.cancel()
        let took = (ContinuousClock.now - start).components
        let elapsed = Double(took.seconds) + Double(took.attoseconds) / 1e18
        for client in connected { client.close() }
        await server.stop()
        let result = BenchResult(latencies: latencies, elapsed: elapsed, expected: duration == nil ? clients * messages : latencies.count)
        io.write(json ? result.json.jsonText + "\n" : result.text)
        if result.completed < result.expected { throw ExitCode(SiotapCLI.Exit.checkFailed) }
    }
}
