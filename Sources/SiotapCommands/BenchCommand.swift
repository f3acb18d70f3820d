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

    @Option(help: "The server (or proxy) to load: http://HOST:PORT, with the Engine.IO path if it is not /socket.io/; none: the built-in conformance app.")
    var target: String?

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
        let mode: SocketIOClient.TransportMode = transport == .polling ? .polling : .websocket
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
        let plan = Plan(count: duration == nil ? messages : Int.max, until: duration.map { CaptureClock.secondsSince1970() + $0 }, interval: rate.map { 1 / $0 })
        let amount = duration.map { "for \($0) s" } ?? "\(clients * messages) round trips"
        io.writeError("siotap bench: \(clients) clients connected to \(host):\(port) over \(transport.rawValue); \(amount) of \(size) bytes\n")
        let start = CaptureClock.secondsSince1970()
        let done = RoundTripCounter()
        let progress = duration == nil ? nil : Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(10))
                guard !Task.isCancelled else { break }
                let seconds = Int(CaptureClock.secondsSince1970() - start)
                io.writeError("siotap bench: \(seconds) s, \(done.count.load(ordering: .relaxed)) round trips\n")
            }
        }
        let latencies = await withTaskGroup(of: [Double].self) { group in
            for (index, client) in connected.enumerated() {
                // Paced clients start spread over one interval, not all in the same instant.
                let phase = (plan.interval ?? 0) * Double(index) / Double(connected.count)
                group.addTask { await Self.roundTrips(client, plan: plan, phase: phase, payload: payload, ack: ack, done: done) }
            }
            var all: [Double] = []
            for await part in group { all += part }
            return all
        }
        progress?.cancel()
        let elapsed = CaptureClock.secondsSince1970() - start
        for client in connected { client.close() }
        await server.stop()
        let result = BenchResult(latencies: latencies, elapsed: elapsed, expected: duration == nil ? clients * messages : latencies.count)
        io.write(json ? result.json.jsonText + "\n" : result.text)
        if result.completed < result.expected { throw ExitCode(SiotapCLI.Exit.checkFailed) }
    }

    /// How long each client goes on, and how fast.
    struct Plan: Sendable {
        var count: Int
        /// Seconds since 1970 at which to stop, for a timed run.
        var until: Double?
        /// Seconds between the starts of two round trips, when paced.
        var interval: Double?
    }

    /// One client's round trips, one at a time; latencies in milliseconds.
    static func roundTrips(_ client: SocketIOClient, plan: Plan, phase: Double, payload: JSONValue, ack: Bool, done: RoundTripCounter) async -> [Double] {
        var latencies: [Double] = []
        latencies.reserveCapacity(min(plan.count, 100_000))
        var echoes = client.events.makeAsyncIterator()
        var next = CaptureClock.secondsSince1970() + phase
        var sentCount = 0
        while sentCount < plan.count {
            if let interval = plan.interval {
                let wait = next - CaptureClock.secondsSince1970()
                if wait > 0 { try? await Task.sleep(for: .seconds(wait)) }
                next = max(next + interval, CaptureClock.secondsSince1970() - interval)
            }
            let sent = CaptureClock.secondsSince1970()
            if let until = plan.until, sent >= until { break }
            sentCount += 1
            if ack {
                guard (try? await client.emitWithAck("message-with-ack", [payload], timeout: 10_000)) != nil else { break }
            } else {
                client.emit("message", [payload])
                var answered = false
                while let event = await echoes.next() {
                    if event.name == "message-back" {
                        answered = true
                        break
                    }
                }
                guard answered else { break }
            }
            latencies.append((CaptureClock.secondsSince1970() - sent) * 1000)
            done.count.add(1, ordering: .relaxed)
        }
        return latencies
    }
}

/// Round trips done so far, across clients, for the progress line.
final class RoundTripCounter: Sendable {
    let count = Atomic<Int>(0)
}

struct BenchResult {
    let latencies: [Double]
    let elapsed: Double
    let expected: Int

    var completed: Int { latencies.count }
    var throughput: Double { elapsed > 0 ? Double(completed) / elapsed : 0 }

    func percentile(_ fraction: Double) -> Double {
        let sorted = latencies.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int((Double(sorted.count) * fraction).rounded(.up)) - 1)]
    }

    private func ms(_ value: Double) -> String { String((value * 1000).rounded() / 1000) }

    var text: String {
        """
        round trips  \(completed) of \(expected) in \(ms(elapsed * 1000)) ms
        throughput   \(Int(throughput)) messages/s
        latency ms   p50 \(ms(percentile(0.5)))  p90 \(ms(percentile(0.9)))  p99 \(ms(percentile(0.99)))  max \(ms(latencies.max() ?? 0))

        """
    }

    var json: JSONValue {
        .object([
            "completed": .number(completed), "expected": .number(expected),
            "seconds": JSONNumber(elapsed).map(JSONValue.number) ?? .null,
            "messages_per_second": .number(Int(throughput)),
            "latency_ms": .object([
                "p50": JSONNumber(percentile(0.5)).map(JSONValue.number) ?? .null,
                "p90": JSONNumber(percentile(0.9)).map(JSONValue.number) ?? .null,
                "p99": JSONNumber(percentile(0.99)).map(JSONValue.number) ?? .null,
                "max": JSONNumber(latencies.max() ?? 0).map(JSONValue.number) ?? .null,
            ]),
        ])
    }
}
