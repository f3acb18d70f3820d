public import SocketIOProtocol
import Synchronization

/// Echo round trips against the conformance contract, from connected clients, one at a time per
/// client, all clients at once: `message` answered by `message-back`, or with `ack`
/// `message-with-ack` answered by an ack. The engine of `siotap bench`.
public struct EchoBench: Sendable {
    public let clients: [SocketIOClient]
    public let payload: JSONValue
    public let ack: Bool

    public init(clients: [SocketIOClient], payload: JSONValue, ack: Bool) {
        self.clients = clients
        self.payload = payload
        self.ack = ack
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

    public init(latencies: [Double], elapsed: Double, expected: Int) {
        self.latencies = latencies
        self.elapsed = elapsed
        self.expected = expected
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
        round trips  \(completed) of \(expected) in \(ms(elapsed * 1000)) ms
        throughput   \(Int(throughput)) messages/s
        latency ms   p50 \(ms(percentile(0.5)))  p90 \(ms(percentile(0.9)))  p99 \(ms(percentile(0.99)))  max \(ms(latencies.max() ?? 0))

        """
    }

    /// For machines (`--json`).
    public var json: JSONValue {
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
