import NIOCore
import SocketIOTransport
import Synchronization
import TrafficCapture

/// The proxy's life: it binds and serves, sweeps conns whose session ended unseen, and stops in
/// an order that leaves every conn closed in the capture.
extension SocketIOProxy {
    /// What runs while the proxy serves.
    struct Running: Sendable {
        var server: HTTPServer?
        var serving: Task<Void, Never>?
        var sweeper: Task<Void, Never>?
    }

    /// Forward mode serves this machine only, unless told otherwise (`--allow-remote`).
    static let loopbackOnly = HTTPServer.Admission.loopbackOnly(
        refusal: "siotap proxy in forward mode serves clients on this machine only; start it with --allow-remote to serve others\n"
    )

    /// Binds and serves in the background; returns the port.
    @discardableResult
    public func start() async throws -> Int {
        var tls = configuration.tls
        tls?.handshakeFailed = { [tracker] remote, reason in
            tracker.emit(.error(ErrorRecord(dir: .clientToServer, code: .tlsHandshake, message: "\(remote): \(reason)")), on: nil)
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
        addOwnPort(http.port)
        running.withLock { running in
            running.server = http
            running.serving = Task { await http.run(delegate: delegate) }
            running.sweeper = Task { [weak self] in await self?.sweepIdleConnections() }
        }
        return http.port
    }

    /// Stops listening and ends every conn still open with a `close` by the proxy, so a capture
    /// stopped under traffic still closes each conn it opened. A connection whose upgrade or
    /// request was already under way is still relayed, but no longer recorded.
    public func shutdown() async {
        // Tokens seen before the stop (found as frames are observed) are recorded before the
        // closes it writes.
        await tracker.flush()
        inspections.finish()
        await inspecting.value
        // Every conn is closed by the stop before its connections are: a request the stop then
        // cuts (a waiting long-poll) finds its conn closed, and is not recorded as the client's
        // leaving or an upstream's failure (a CI run once recorded "client went away").
        for connection in tracker.stop() {
            close(connection, by: .proxy, reason: "proxy stopped", waitingForActivity: false)
        }
        // The records are all in the sink when the stop returns.
        await tracker.flush()
        let running = self.running.withLock { $0 }
        await running.server?.close()
        running.serving?.cancel()
        running.sweeper?.cancel()
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
    private func sweepIdleConnections() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(min(0.5, configuration.idleTimeout / 4)))
            tracker.sweep(releaseAfter: 0.5, idleTimeout: configuration.idleTimeout, grace: 1)
        }
    }
}
