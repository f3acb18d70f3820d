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
public final class SocketIOProxy: WebSocketRelayDelegate {
    public typealias Sink = @Sendable (_ body: CaptureRecord.Body, _ conn: String?) -> Void

    public let configuration: ProxyConfiguration
    let sink: Sink
    /// Asked before reading more from clients and upstreams: the capture may be behind.
    let readGate: ReadGate?
    let tracker = ConnectionTracker()
    let inspector: JWTInspector
    /// Kept-alive connections for the polling hop.
    let upstream: HTTPConnectionPool
    private let server = Mutex<HTTPServer?>(nil)
    private let serving = Mutex<Task<Void, Never>?>(nil)
    private let sweeper = Mutex<Task<Void, Never>?>(nil)

    /// - Parameter readGate: when the records' consumer falls behind (see
    ///   ``CaptureQueue/admit(orResume:)``), the proxy stops reading until it catches up.
    public init(configuration: ProxyConfiguration, readGate: ReadGate? = nil, sink: @escaping Sink) {
        self.configuration = configuration
        self.readGate = readGate
        self.sink = sink
        inspector = JWTInspector(key: configuration.jwtKey, leewaySeconds: configuration.jwtLeeway)
        upstream = HTTPConnectionPool(host: configuration.upstreamHost, port: configuration.upstreamPort, tls: configuration.upstreamTLS)
    }

    /// Binds and serves in the background; returns the port.
    @discardableResult
    public func start() async throws -> Int {
        var tls = configuration.tls
        tls?.handshakeFailed = { [sink] remote, reason in
            sink(.error(ErrorRecord(dir: .clientToServer, code: .tlsHandshake, message: "\(remote): \(reason)")), nil)
        }
        let http = try await HTTPServer.bind(
            .init(host: configuration.listenHost, port: configuration.listenPort, maxBodySize: configuration.maxMessageSize, tls: tls),
            delegate: self
        )
        server.withLock { $0 = http }
        serving.withLock { $0 = Task { await http.run(delegate: self) } }
        sweeper.withLock { $0 = Task { [weak self] in await self?.sweepIdleConnections() } }
        return http.port
    }

    /// Stops listening and ends every conn still open with a `close` by the proxy, so a capture
    /// stopped under traffic still closes each conn it opened. A connection whose upgrade or
    /// request was already under way is still relayed, but no longer recorded.
    public func shutdown() async {
        await server.withLock { $0 }?.close()
        serving.withLock { $0 }?.cancel()
        sweeper.withLock { $0 }?.cancel()
        upstream.close()
        for connection in tracker.stop() {
            close(connection, by: .proxy, reason: "proxy stopped", waitingForActivity: false)
        }
    }

    /// A polling client can vanish without a word (an aborted page, a client that drops its
    /// requests on disconnect), and its upstream then expires the session unseen: a conn with no
    /// request for its session's pingInterval + pingTimeout (and a second) has been ended by its
    /// server, and gets its `close` record (at the latest after `idleTimeout`), so every conn
    /// ends in the capture, about when its session did, and memory does not grow with dead ones.
    private func sweepIdleConnections() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(min(1, configuration.idleTimeout / 4)))
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
