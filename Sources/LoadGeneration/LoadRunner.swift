import SocketIOClient
public import TransportTLS
public import SocketIOProtocol
public import TrafficCapture
public import TrafficReplay
import Synchronization
import NIOCore
import NIOPosix

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
    /// Users live on the event loops (a WebSocket user is a handler, no task of its own); a task
    /// exists per user only while it connects, and for the length of a polling user's session.
    public static func run(_ records: [CaptureRecord], options: LoadOptions, metrics: LoadMetrics) async throws(NothingToPlay) {
        let found = scripts(records, pick: options.pick)
        guard !found.isEmpty else {
            throw NothingToPlay(description: options.pick == nil ? "the capture has no conn with packets of a client's" : "no conn has a packet --pick keeps")
        }
        let causes = causes(records)
        let scripts = found.map { UserScript($0, causes: causes) }
        let start = ContinuousClock.now
        let deadline = options.duration.map { start + .seconds($0) }
        let users = UserRoster(options: options, scripts: scripts, metrics: metrics, deadline: deadline)
        await withTaskGroup(of: Void.self) { group in
            if let deadline {
                group.addTask {
                    try? await Task.sleep(until: deadline)
                    users.stopAll()
                }
            }
            group.addTask {
                for user in 0..<options.users where user % options.worker.count == options.worker.index {
                    try? await Task.sleep(until: start + .seconds(options.startOffset(of: user)))
                    guard !Task.isCancelled, deadline.map({ ContinuousClock.now < $0 }) ?? true else { break }
                    users.start(user)
                }
                await users.allEnded()
            }
            // Either every user has ended, or the time is up and every user has been stopped.
            await group.next()
            if deadline != nil {
                await users.allEnded()
                group.cancelAll()
            }
        }
    }
}

/// The users playing now: who they are (to stop them when the time is up), how many, and who
/// waits for the last one to end.
final class UserRoster: Sendable {
    private struct State {
        var playing: [Int: NIOLoopBound<UserSession>] = [:]
        var connecting = 0
        var stopped = false
        var waiters: [CheckedContinuation<Void, Never>] = []
        var idle: Bool { playing.isEmpty && connecting == 0 }
    }

    private let options: LoadOptions
    private let scripts: [UserScript]
    private let metrics: LoadMetrics
    private let deadline: ContinuousClock.Instant?
    private let state = Mutex(State())
    private let group = MultiThreadedEventLoopGroup.singleton

    init(options: LoadOptions, scripts: [UserScript], metrics: LoadMetrics, deadline: ContinuousClock.Instant?) {
        self.options = options
        self.scripts = scripts
        self.metrics = metrics
        self.deadline = deadline
    }

    /// Starts user `number`'s session (again, with `--loop`).
    func start(_ number: Int) {
        guard state.withLock({ state in
            guard !state.stopped else { return false }
            state.connecting += 1
            return true
        }) else { return }
        let script = scripts[number % scripts.count]
        let loop = group.next()
        Task {
            let tokens: UserScript.Tokens?
            if let key = options.tokenKey {
                var refresher = TokenRefresher(key: key)
                refresher.overrides = options.claims.map { ($0.name, $0.value(user: number)) }
                tokens = await script.tokens(refresher: refresher)
            } else {
                tokens = nil
            }
            metrics.started()
            let begin = ContinuousClock.now
            let makeSession: @Sendable () -> UserSession = { [self] in
                let machine = VirtualUserMachine(
                    script: script, tokens: tokens, begin: begin, speed: options.speed, timeout: .seconds(options.timeout)
                )
                let session = UserSession(machine: machine, loop: loop, metrics: metrics) { [self] done in self.ended(number) }
                let stop = state.withLock { state in
                    state.connecting -= 1
                    state.playing[number] = NIOLoopBound(session, eventLoop: loop)
                    return state.stopped
                }
                if stop {
                    let bound = NIOLoopBound(session, eventLoop: loop)
                    loop.execute { bound.value.stop() }
                }
                return session
            }
            let path = options.path ?? script.path
            let query = tokens?.query ?? script.query
            let started: Bool
            func uri(_ transport: String) -> String {
                "\(path)?EIO=\(script.engineVersion.rawValue)&transport=\(transport)" + (query.isEmpty ? "" : "&" + query)
            }
            if script.transport == .websocket {
                started = await WebSocketUser.connect(
                    host: options.host, port: options.port, uri: uri("websocket"), tls: options.tls, loop: loop, script: script, makeSession: makeSession
                )
            } else {
                // A handshake that fails ends the session as connect_failed, through the machine.
                let (host, port, tls, polling) = (options.host, options.port, options.tls, uri("polling"))
                let upgrade = script.transport.upgrades ? uri("websocket") : nil
                loop.execute {
                    LongPollingUser(
                        host: host, port: port, uri: polling, tls: tls, version: script.engineVersion, parser: script.parser, loop: loop,
                        session: makeSession(), upgradeURI: upgrade
                    ).start()
                }
                started = true
            }
            if !started {
                metrics.error(.connectFailed)
                metrics.ended(wasConnected: false, done: false)
                connectFailed()
            }
        }
    }

    private func ended(_ number: Int) {
        let restart = options.loop && deadline.map { ContinuousClock.now < $0 } ?? options.loop
        let waiters = state.withLock { state in
            state.playing[number] = nil
            return settle(&state, starting: restart)
        }
        for waiter in waiters { waiter.resume() }
        if restart { start(number) }
    }

    private func connectFailed() {
        let waiters = state.withLock { state in
            state.connecting -= 1
            return settle(&state, starting: false)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Who to wake: nobody plays, connects or is about to start again.
    private func settle(_ state: inout State, starting: Bool) -> [CheckedContinuation<Void, Never>] {
        guard state.idle, !starting || state.stopped else { return [] }
        defer { state.waiters = [] }
        return state.waiters
    }

    /// The time is up: every user stops where it is; none starts again.
    func stopAll() {
        let playing = state.withLock { state in
            state.stopped = true
            return Array(state.playing.values)
        }
        for session in playing { session.eventLoop.execute { session.value.stop() } }
    }

    /// Returns once no user plays or connects.
    func allEnded() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state in
                if state.idle { return true }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }
}
