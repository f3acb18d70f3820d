public import SocketIOClient
public import TransportTLS
public import SocketIOProtocol
public import TrafficCapture
public import TrafficReplay
import Synchronization

/// `siotap load`: captured conns played as virtual users, each one conn of the capture (round
/// robin), with its transports, namespaces, events and think times as recorded.
public struct LoadOptions: Sendable {
    public var host: String
    public var port: Int
    /// The Engine.IO path; nil: each conn's recorded one.
    public var path: String?
    public var tls: TLSClientSettings?
    public var users: Int
    /// Seconds over which the users start, evenly.
    public var ramp: Double
    /// New users a second (`--rate`): user N starts at N / rate seconds; overrides `ramp`.
    public var rate: Double?
    /// Seconds after which the run stops (users still playing are ended); nil: when all are done.
    public var duration: Double?
    /// Think times divided by this.
    public var speed: Double
    /// A user starts its conn again when it ends (until `duration`).
    public var loop: Bool
    /// Seconds to wait for an ack, or for a server event the capture shows.
    public var timeout: Double
    /// Re-mints each user's tokens with this key.
    public var tokenKey: TokenRefresher.Key?
    /// Claims each user's tokens get (`sub={user}`).
    public var claims: [ClaimTemplate]
    /// Only the conns with a packet this filter keeps are played.
    public var pick: CaptureFilter?
    /// This process plays the users whose number is `index` modulo `count` (`--worker-index`,
    /// `--workers`): the workers together play what one process would, at the same times.
    public var worker: (index: Int, count: Int) = (0, 1)

    public init(
        host: String, port: Int, path: String? = nil, tls: TLSClientSettings? = nil, users: Int, ramp: Double = 0, duration: Double? = nil,
        speed: Double = 1, loop: Bool = false, timeout: Double = 10, tokenKey: TokenRefresher.Key? = nil, claims: [ClaimTemplate] = [],
        pick: CaptureFilter? = nil
    ) {
        self.host = host
        self.port = port
        self.path = path
        self.tls = tls
        self.users = users
        self.ramp = ramp
        self.duration = duration
        self.speed = speed
        self.loop = loop
        self.timeout = timeout
        self.tokenKey = tokenKey
        self.claims = claims
        self.pick = pick
    }

    /// When user `number` starts, in seconds from the run's start.
    func startOffset(of number: Int) -> Double {
        if let rate { return Double(number) / rate }
        return users > 1 ? ramp * Double(number) / Double(users) : 0
    }
}

/// `--claim NAME=TEMPLATE`: `{user}` is the virtual user's number (0, 1, 2…); a value that reads
/// as JSON is that JSON (`id={user}` a number, `sub="u{user}"` a string), any other a string.
public struct ClaimTemplate: Sendable, Hashable {
    public var name: String
    public var template: String

    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public init(_ spec: String) throws(Invalid) {
        let parts = spec.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty else { throw Invalid(description: "a claim is NAME=VALUE ({user} is the user's number): \(spec)") }
        name = parts[0]
        template = parts[1]
    }

    public func value(user: Int) -> JSONValue {
        let text = template.replacing("{user}", with: String(user))
        return (try? JSONValue.parse(text)) ?? .string(JSONString(text))
    }
}

public enum LoadRunner {
    public struct NothingToPlay: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// The conns a load plays: those with packets of the client's, kept by `pick`.
    package static func scripts(_ records: [CaptureRecord], pick: CaptureFilter?) -> [Replayer.Script] {
        let kept: Set<String>? = pick.map { filter in
            Set(records.compactMap { record in record.conn.flatMap { filter.matches(record) ? $0 : nil } })
        }
        return Replayer.makeScripts(records).filter { script in
            script.steps.contains { $0.packet.dir == .clientToServer } && (kept?.contains(script.conn) ?? true)
        }
    }

    /// The server events a conn's own packet caused, as the capture shows it, each with its cause
    /// (by `seq`): the conn's latest client packet in the event's namespace, when the latest client
    /// packet on any conn was the conn's own. A broadcast another conn's packet caused is counted
    /// when it comes, not waited for: with other users it comes from someone else, or not at all.
    /// (By namespace: two CONNECTs sent back to back are each answered in their own.)
    package static func causes(_ records: [CaptureRecord]) -> [Int: Int] {
        var causes: [Int: Int] = [:]
        var lastClientConn: String?
        var latest: [String: [String: Int]] = [:]  // conn -> namespace -> seq
        for record in records.sorted(by: { $0.seq < $1.seq }) {
            guard case .packet(let packet) = record.body, let conn = record.conn else { continue }
            if packet.dir == .clientToServer {
                lastClientConn = conn
                latest[conn, default: [:]][packet.nsp] = record.seq
            } else if packet.type.isEvent, lastClientConn == conn, let cause = latest[conn]?[packet.nsp] {
                causes[record.seq] = cause
            }
        }
        return causes
    }

    /// Plays the users until all are done (or `duration` has passed), measuring into `metrics`.
    public static func run(_ records: [CaptureRecord], options: LoadOptions, metrics: LoadMetrics) async throws(NothingToPlay) {
        let scripts = scripts(records, pick: options.pick)
        guard !scripts.isEmpty else {
            throw NothingToPlay(description: options.pick == nil ? "the capture has no conn with packets of a client's" : "no conn has a packet --pick keeps")
        }
        let causes = causes(records)
        let start = ContinuousClock.now
        let deadline = options.duration.map { start + .seconds($0) }
        await withTaskGroup(of: Void.self) { group in
            if let deadline {
                group.addTask {
                    try? await Task.sleep(until: deadline)
                }
            }
            for user in 0..<options.users where user % options.worker.count == options.worker.index {
                let script = scripts[user % scripts.count]
                let begin = start + .seconds(options.startOffset(of: user))
                group.addTask {
                    try? await Task.sleep(until: begin)
                    repeat {
                        guard !Task.isCancelled, deadline.map({ ContinuousClock.now < $0 }) ?? true else { return }
                        await VirtualUser(script: script, causes: causes, number: user, options: options, metrics: metrics).play()
                    } while options.loop
                }
            }
            if deadline != nil {
                // The clock's task ends first when the time is up: the users still playing are ended.
                await group.next()
                group.cancelAll()
            }
        }
    }
}

/// One virtual user playing one conn: its packets sent at their recorded times (think times over
/// `speed`), each ack timed from its emit, each server event the capture shows after a packet timed
/// from that packet.
struct VirtualUser {
    let script: Replayer.Script
    /// The capture's server events caused by a packet of their own conn: effect `seq` to cause `seq`.
    let causes: [Int: Int]
    let number: Int
    let options: LoadOptions
    let metrics: LoadMetrics

    func play() async {
        var script = script
        if let key = options.tokenKey {
            var refresher = TokenRefresher(key: key)
            refresher.overrides = options.claims.map { ($0.name, $0.value(user: number)) }
            script = await Replayer.refreshTokens(script, refresher: refresher)
        }
        let client = SocketIOClient(
            host: options.host, port: options.port, path: options.path ?? script.path, engineVersion: script.engineVersion, query: script.query,
            parser: script.parser, tls: options.tls, streamsEvents: false
        )
        metrics.started()
        let begin = ContinuousClock.now
        do {
            try await client.open(transport: script.transport)
        } catch {
            metrics.error(.connectFailed)
            metrics.ended(wasConnected: false, done: false)
            return
        }
        let waiting = Expectations()
        let metrics = metrics
        // CONNECTs go as recorded (two namespaces' back to back, not one after the other's
        // answer); their answers are read here: the first accepted one is the connect time.
        let reading = Task {
            for await packet in client.packets {
                switch packet.type {
                case .connect:
                    if waiting.connected(packet.namespace) { metrics.connected(ContinuousClock.now - begin) }
                case .connectError:
                    waiting.refused()
                    metrics.error(.refused)
                case .event, .binaryEvent:
                    guard let name = packet.eventName else { continue }
                    metrics.received(name)
                    if let since = waiting.take(name, namespace: packet.namespace) { metrics.event(name, ContinuousClock.now - since) }
                default: break
                }
            }
            waiting.sessionEnded()
        }
        var finished = true
        let sends = script.steps.enumerated().filter { $0.element.packet.dir == .clientToServer }
        var effects: [Int: [(name: String, namespace: String)]] = [:]
        for step in script.steps {
            if let cause = causes[step.seq], let name = step.packet.event { effects[cause, default: []].append((name, step.packet.nsp)) }
        }
        let base = sends.first.flatMap { script.times[$0.element.seq] } ?? 0
        var asking: [Task<Void, Never>] = []
        for (_, step) in sends {
            if let time = script.times[step.seq] {
                let due = begin + .seconds(max(0, time - base) / options.speed)
                if due > .now { try? await Task.sleep(until: due) }
            }
            if Task.isCancelled {
                finished = false
                break
            }
            if waiting.wasRefused {
                finished = false
                break
            }
            if waiting.hasEnded {
                metrics.error(.disconnected)
                finished = false
                break
            }
            // What the capture shows this packet caused, waited for from before it goes: an answer
            // can come before the send returns.
            let now = ContinuousClock.now
            for effect in effects[step.seq] ?? [] { waiting.expect(effect.name, namespace: effect.namespace, since: now) }
            let packet = SocketPacket(record: step.packet)
            if packet.type == .connect, script.engineVersion == .v3, packet.namespace == "/" {
                // Protocol v4 joins `/` by itself: the recorded CONNECT is the server's doing.
                continue
            }
            if packet.type != .connect, !(await waiting.joined(packet.namespace, within: .seconds(options.timeout))) {
                // As client libraries do, nothing goes to a namespace before its CONNECT is answered
                // (socket.io closes a connection that sends to one it has not joined).
                if !waiting.wasRefused, !waiting.hasEnded { metrics.error(.eventTimeout) }
                finished = false
                break
            }
            if packet.type.isEvent, packet.ackID != nil, let name = packet.eventName {
                let timeout = Int(options.timeout * 1000)
                asking.append(Task {
                    let sent = ContinuousClock.now
                    do {
                        _ = try await client.emitWithAck(name, packet.arguments, namespace: packet.namespace, timeout: timeout)
                        metrics.ack(name, ContinuousClock.now - sent)
                    } catch let error as SocketIOClient.ClientError where error.code == .connectionClosed {
                        metrics.error(.disconnected)
                    } catch {
                        metrics.error(.ackTimeout)
                    }
                })
            } else {
                client.send(packet)
            }
        }
        for task in asking { await task.value }
        let missing = await waiting.settle(within: .seconds(options.timeout))
        if !waiting.wasRefused, missing > 0 {
            // Waited for in vain, or gone with the session.
            if waiting.hasEnded { metrics.error(.disconnected) } else { for _ in 0..<missing { metrics.error(.eventTimeout) } }
        }
        end(client, reading, connected: waiting.wasConnected, done: finished && !waiting.wasRefused)
    }

    private func end(_ client: SocketIOClient, _ reading: Task<Void, Never>, connected: Bool, done: Bool) {
        client.close()
        reading.cancel()
        metrics.ended(wasConnected: connected, done: done)
    }
}

/// The server events a user waits for, oldest first, and whether its session has ended.
final class Expectations: Sendable {
    private struct Expected {
        var name: String
        var namespace: String
        var since: ContinuousClock.Instant
    }

    private struct State {
        var waiting: [Expected] = []
        var ended = false
        var refused = false
        var namespaces: Set<String> = []
        /// Who waits for a namespace's answer, by namespace.
        var joining: [String: [CheckedContinuation<Bool, Never>]] = [:]
    }

    private let state = Mutex(State())

    /// A namespace was accepted; true for the first.
    func connected(_ namespace: String) -> Bool {
        let (first, waiters) = state.withLock { state in
            let first = state.namespaces.isEmpty
            state.namespaces.insert(namespace)
            return (first, state.joining.removeValue(forKey: namespace) ?? [])
        }
        for waiter in waiters { waiter.resume(returning: true) }
        return first
    }

    func refused() {
        state.withLock { $0.refused = true }
        wakeJoiners()
    }

    var wasRefused: Bool { state.withLock { $0.refused } }
    var wasConnected: Bool { state.withLock { !$0.namespaces.isEmpty } }

    /// Whether the namespace is joined, waiting up to `limit` for its answer.
    func joined(_ namespace: String, within limit: Duration) async -> Bool {
        if state.withLock({ $0.namespaces.contains(namespace) }) { return true }
        let timer = Task {
            try? await Task.sleep(for: limit)
            self.wakeJoiners(of: namespace)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { continuation in
            let now: Bool? = state.withLock { state in
                if state.namespaces.contains(namespace) { return true }
                if state.ended || state.refused { return false }
                state.joining[namespace, default: []].append(continuation)
                return nil
            }
            if let now { continuation.resume(returning: now) }
        }
    }

    private func wakeJoiners(of namespace: String? = nil) {
        let waiters = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            if let namespace { return state.joining.removeValue(forKey: namespace) ?? [] }
            defer { state.joining = [:] }
            return state.joining.values.flatMap { $0 }
        }
        for waiter in waiters { waiter.resume(returning: false) }
    }

    func expect(_ name: String, namespace: String, since: ContinuousClock.Instant) {
        state.withLock { $0.waiting.append(Expected(name: name, namespace: namespace, since: since)) }
    }

    /// The oldest wait for this event, taken.
    func take(_ name: String, namespace: String) -> ContinuousClock.Instant? {
        state.withLock { state in
            guard let index = state.waiting.firstIndex(where: { $0.name == name && $0.namespace == namespace }) else { return nil }
            return state.waiting.remove(at: index).since
        }
    }

    func sessionEnded() {
        state.withLock { $0.ended = true }
        wakeJoiners()
    }
    var hasEnded: Bool { state.withLock { $0.ended } }

    /// Waits until nothing is waited for, the session ended, or the time is up; how many never came.
    func settle(within limit: Duration) async -> Int {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            let (count, over) = state.withLock { ($0.waiting.count, $0.ended || $0.refused) }
            if count == 0 || over { break }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return state.withLock { $0.waiting.count }
    }
}
