import JWTInspection
import NIOCore
import NIOHTTP1
import SocketIOTransport
import Synchronization
public import TrafficCapture

/// The man in the middle: relays HTTP long-polling and WebSocket traffic between Socket.IO
/// clients and an upstream server, unchanged, and reports what it decodes on the way.
///
/// Decoding only observes: bytes are forwarded as they came, and a frame that fails to decode is
/// reported as an `error` record while it still goes through.
public final class SocketIOProxy: Sendable {
    /// Takes a record; returns the `seq` it will have (0 when unknown).
    public typealias Sink = @Sendable (_ body: CaptureRecord.Body, _ conn: String?) -> Int

    public let configuration: ProxyConfiguration
    let sink: Sink
    /// Asked before reading more from clients and upstreams: the capture may be behind.
    let readGate: ReadGate?
    let tracker: ConnectionTracker
    let inspector: JWTInspector
    /// Reverse mode's upstream; forward mode's are made as clients ask for hosts.
    let reverseUpstream: ProxyUpstream
    private let upstreams = Mutex<[String: ProxyUpstream]>([:])
    private let server = Mutex<HTTPServer?>(nil)
    private let serving = Mutex<Task<Void, Never>?>(nil)
    private let sweeper = Mutex<Task<Void, Never>?>(nil)
    /// Tokens to inspect, in the order they were seen, and the one task that inspects them.
    let inspections: AsyncStream<TokenInspection>.Continuation
    private let inspecting: Task<Void, Never>
    private let ownPortSet = Mutex<Set<Int>>([])
    /// This machine's addresses, for forward mode's remote clients (read once, at start).
    let machineAddresses: Set<String>

    /// - Parameter readGate: when the records' consumer falls behind (see
    ///   ``CaptureQueue/admit(orResume:)``), the proxy stops reading until it catches up.
    public init(configuration: ProxyConfiguration, readGate: ReadGate? = nil, sink: @escaping Sink) {
        self.configuration = configuration
        self.readGate = readGate
        self.sink = sink
        tracker = ConnectionTracker(faults: configuration.faults, parser: configuration.parser, sink: { body, conn in sink(body, conn) })
        inspector = JWTInspector(key: configuration.jwtKey, leewaySeconds: configuration.jwtLeeway)
        reverseUpstream = ProxyUpstream(host: configuration.upstreamHost, port: configuration.upstreamPort, tls: configuration.upstreamTLS)
        machineAddresses = configuration.forward != nil && configuration.allowRemote ? ForwardAccess.machineAddresses() : []
        let (queued, inspections) = AsyncStream.makeStream(of: TokenInspection.self)
        self.inspections = inspections
        // Holds the tracker and inspector, not the proxy, which stays free to go.
        inspecting = Task { [tracker, inspector] in await Self.runInspections(queued, inspector: inspector, tracker: tracker) }
    }

    deinit {
        inspections.finish()
    }

    /// siotap's own listening ports (the proxy's, the inspector's): not to be reached through the
    /// proxy by clients on other machines.
    var ownPorts: Set<Int> { ownPortSet.withLock { $0 } }

    /// Tells the proxy of another port siotap listens on (the inspector's).
    public func addOwnPort(_ port: Int) {
        _ = ownPortSet.withLock { $0.insert(port) }
    }

    /// A forward-mode host's upstream, with its pool, made the first time it is asked for;
    /// `address`: dialled instead of the name (which TLS still checks), when one was pinned.
    func upstream(host: String, port: Int, tls: Bool, address: String? = nil) throws -> ProxyUpstream {
        let key = "\(tls ? "https" : "http")://\(Authority.text(host: host, port: port))" + (address.map { "@" + $0 } ?? "")
        if let known = upstreams.withLock({ $0[key] }) { return known }
        let settings = try configuration.forward.flatMap { forward in
            tls ? try TLSClientSettings(trust: forward.upstreamTrust, serverName: host, keyLogPath: forward.keyLogPath) : nil
        }
        let made = ProxyUpstream(host: address ?? host, port: port, tls: settings)
        return upstreams.withLock { upstreams in
            if let raced = upstreams[key] { return raced }
            upstreams[key] = made
            return made
        }
    }

    /// The 502 for an upstream siotap could not even set up.
    func cannotReach(_ error: any Error) -> HTTPResponse {
        HTTPResponse(
            status: .badGateway, headers: ["Content-Type": "text/plain; charset=utf-8"],
            body: Array("siotap proxy: cannot set up the upstream: \(error)\n".utf8), closeConnection: true
        )
    }

    /// Binds and serves in the background; returns the port.
    @discardableResult
    public func start() async throws -> Int {
        var tls = configuration.tls
        tls?.handshakeFailed = { [sink] remote, reason in
            _ = sink(.error(ErrorRecord(dir: .clientToServer, code: .tlsHandshake, message: "\(remote): \(reason)")), nil)
        }
        let delegate: any HTTPServerDelegate = configuration.forward.map { ForwardFront(proxy: self, settings: $0) }
            ?? ProxyRoute(proxy: self, destination: .upstream(reverseUpstream, target: nil))
        let http = try await HTTPServer.bind(
            .init(
                host: configuration.listenHost, port: configuration.listenPort, maxBodySize: configuration.maxMessageSize, tls: tls,
                admits: configuration.admitsRemoteClients ? nil : Self.loopbackOnly,
                // Relaying a request is short work that never blocks: done on the client's loop,
                // it costs no thread wake-ups between reading the request and writing its answer.
                servesOnEventLoop: true
            ),
            delegate: delegate
        )
        server.withLock { $0 = http }
        addOwnPort(http.port)
        serving.withLock { $0 = Task { await http.run(delegate: delegate) } }
        sweeper.withLock { $0 = Task { [weak self] in await self?.sweepIdleConnections() } }
        return http.port
    }

    /// Stops listening and ends every conn still open with a `close` by the proxy, so a capture
    /// stopped under traffic still closes each conn it opened. A connection whose upgrade or
    /// request was already under way is still relayed, but no longer recorded.
    public func shutdown() async {
        // Tokens seen before the stop are recorded before the closes it writes.
        inspections.finish()
        await inspecting.value
        // Every conn is closed by the stop before its connections are: a request the stop then
        // cuts (a waiting long-poll) finds its conn closed, and is not recorded as the client's
        // leaving or an upstream's failure (a CI run once recorded "client went away").
        for connection in tracker.stop() {
            close(connection, by: .proxy, reason: "proxy stopped", waitingForActivity: false)
        }
        await server.withLock { $0 }?.close()
        serving.withLock { $0 }?.cancel()
        sweeper.withLock { $0 }?.cancel()
        for upstream in [reverseUpstream] + upstreams.withLock({ $0.values }) {
            upstream.pool.close()
            upstream.relayPool.close()
        }
    }

    /// A polling client can vanish without a word (an aborted page, a client that drops its
    /// requests on disconnect), and its upstream then expires the session unseen: a conn with no
    /// request for its session's pingInterval + pingTimeout (and a second) has been ended by its
    /// server, and gets its `close` record (at the latest after `idleTimeout`), so every conn
    /// ends in the capture, about when its session did, and memory does not grow with dead ones.
    /// Forward mode serves this machine only, unless told otherwise (`--allow-remote`).
    static let loopbackOnly = HTTPServer.Admission.loopbackOnly(
        refusal: "siotap proxy in forward mode serves clients on this machine only; start it with --allow-remote to serve others\n"
    )

    private func sweepIdleConnections() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(min(0.5, configuration.idleTimeout / 4)))
            tracker.releaseHeld(now: CaptureClock.secondsSince1970(), after: 0.5)
            for (connection, quiet) in tracker.idle(now: CaptureClock.secondsSince1970(), timeout: configuration.idleTimeout, grace: 1) {
                let seconds = quiet == quiet.rounded() ? String(Int(quiet)) : String((quiet * 10).rounded() / 10)
                close(connection, by: .proxy, reason: "no request for \(seconds) s: the session has expired", waitingForActivity: false)
            }
        }
    }
}

/// The conn a relay carries, known once the client's side is attached.
final class RelayedConnection: Sendable {
    let connection = Mutex<ConnectionTracker.Connection?>(nil)
}
