public import SocketIOProtocol
import Synchronization

/// Echo round trips from connected clients, one at a time per client, all clients at once: by
/// default the conformance contract's `message` answered by `message-back`, or with `ack`
/// `message-with-ack` answered by an ack; other apps' events by name (the seed's chat answers
/// `message` with `chat response`). The engine of `siotap bench`.
public struct EchoBench: Sendable {
    public let clients: [SocketIOClient]
    public let payload: JSONValue
    public let ack: Bool
    /// The event sent, and (without `ack`) the one that answers it.
    public let event: String
    public let reply: String

    public init(clients: [SocketIOClient], payload: JSONValue, ack: Bool, event: String? = nil, reply: String = "message-back") {
        self.clients = clients
        self.payload = payload
        self.ack = ack
        self.event = event ?? (ack ? "message-with-ack" : "message")
        self.reply = reply
    }

    /// How long each client goes on, and how fast.
    public struct Plan: Sendable {
        public var count: Int
        /// Seconds to run for, instead of a count.
        public var seconds: Double?
        /// Seconds between the starts of two round trips, when paced.
        public var interval: Double?

        public init(count: Int, seconds: Double? = nil, interval: Double? = nil) {
            self.count = count
            self.seconds = seconds
            self.interval = interval
        }
    }

    /// Runs the plan on every client; every round trip's latency in milliseconds.
    public func run(_ plan: Plan, done: RoundTripCounter = RoundTripCounter()) async -> [Double] {
        let until = plan.seconds.map { ContinuousClock.now + .milliseconds(Int($0 * 1000)) }
        return await withTaskGroup(of: [Double].self) { group in
            for (index, client) in clients.enumerated() {
                // Paced clients start spread over one interval, not all in the same instant.
                let phase = (plan.interval ?? 0) * Double(index) / Double(clients.count)
                group.addTask { await roundTrips(client, plan: plan, until: until, phase: phase, done: done) }
            }
            var all: [Double] = []
            for await part in group { all += part }
            return all
        }
    }

    /// One client's round trips, one at a time; latencies in milliseconds.
    private func roundTrips(_ client: SocketIOClient, plan: Plan, until: ContinuousClock.Instant?, phase: Double, done: RoundTripCounter) async -> [Double] {
        var latencies: [Double] = []
        latencies.reserveCapacity(min(plan.count, 100_000))
        var echoes = client.events.makeAsyncIterator()
        let interval = plan.interval.map { Duration.nanoseconds(Int64($0 * 1e9)) }
        var next = ContinuousClock.now + .nanoseconds(Int64(phase * 1e9))
        var sentCount = 0
        while sentCount < plan.count {
            if let interval {
                if next > .now { try? await Task.sleep(until: next, clock: .continuous) }
                next = max(next + interval, .now - interval)
            }
            let sent = ContinuousClock.now
            if let until, sent >= until { break }
            sentCount += 1
            if ack {
                guard (try? await client.emitWithAck(event, [payload], timeout: 10_000)) != nil else { break }
            } else {
                client.emit(event, [payload])
                var answered = false
                while let answer = await echoes.next() {
                    if answer.name == reply {
                        answered = true
                        break
                    }
                }
                guard answered else { break }
            }
            let elapsed = (ContinuousClock.now - sent).components
            latencies.append(Double(elapsed.seconds) * 1000 + Double(elapsed.attoseconds) / 1e15)
            done.count.add(1, ordering: .relaxed)
        }
        return latencies
    }
}

/// Round trips done so far, across clients, for the progress line.
public final class RoundTripCounter: Sendable {
    public let count = Atomic<Int>(0)

    public init() {}
}

/// What a bench run measured: every latency and the time it took.
public struct BenchResult: Sendable {
    public let latencies: [Double]
    public let elapsed: Double
    public let expected: Int
    public let connections: Connections

    /// How the clients' connections went: a refusal (the server's CONNECT_ERROR: auth
    /// middleware) is not an error (no session, a reset, a timeout).
    public struct Connections: Sendable {
        public var attempted = 0
        public var connected = 0
        public var refused = 0
        public var failed = 0
        public var firstRefusal: String?
        public var firstError: String?

        public init() {}

        var json: JSONValue {
            var members: [JSONObject.Member] = [
                .init(key: JSONString("attempted"), value: .number(attempted)), .init(key: JSONString("connected"), value: .number(connected)),
                .init(key: JSONString("refused"), value: .number(refused)), .init(key: JSONString("failed"), value: .number(failed)),
            ]
            if let firstRefusal { members.append(.init(key: JSONString("first_refusal"), value: .string(JSONString(firstRefusal)))) }
            if let firstError { members.append(.init(key: JSONString("first_error"), value: .string(JSONString(firstError)))) }
            return .object(JSONObject(members))
        }
    }

    public init(latencies: [Double], elapsed: Double, expected: Int, connections: Connections = Connections()) {
        self.latencies = latencies
        self.elapsed = elapsed
        self.expected = expected
        self.connections = connections
    }

    public var completed: Int { latencies.count }
    public var throughput: Double { elapsed > 0 ? Double(completed) / elapsed : 0 }

    public func percentile(_ fraction: Double) -> Double {
        let sorted = latencies.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int((Double(sorted.count) * fraction).rounded(.up)) - 1)]
    }

    private func ms(_ value: Double) -> String { String((value * 1000).rounded() / 1000) }

    /// For people.
    public var text: String {
        """
        clients      \(connections.connected) of \(connections.attempted) connected\(connections.refused > 0 ? ", \(connections.refused) refused (\(connections.firstRefusal ?? ""))" : "")\(connections.failed > 0 ? ", \(connections.failed) failed (\(connections.firstError ?? ""))" : "")
        round trips  \(completed) of \(expected) in \(ms(elapsed * 1000)) ms
        throughput   \(Int(throughput)) messages/s
        latency ms   p50 \(ms(percentile(0.5)))  p90 \(ms(percentile(0.9)))  p99 \(ms(percentile(0.99)))  max \(ms(latencies.max() ?? 0))

        """
    }

    /// For machines (`--json`).
    public var json: JSONValue {
        .object([
            "completed": .number(completed), "expected": .number(expected),
            "connections": connections.json,
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
