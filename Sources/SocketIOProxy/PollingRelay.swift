import NIOCore
import NIOHTTP1
import SocketIOProtocol
import SocketIOTransport
import TrafficCapture
import TrafficObservation

/// Reverse mode's HTTP, relayed as bytes (``HTTPRelayFront``): every request but upgrades and
/// CONNECTs goes on as it came, on a kept upstream connection, and a polling request's bodies
/// are observed once they went on. With `--fault`, a known session's polls are gathered whole
/// instead and answered through ``PollingResponder``, each packet decided before it goes on. What the relay does not take (a chunked request, HTTP/1.0)
/// goes the codec's way, ``SocketIOProxy/handle(_:via:to:)``, which observes the same.
struct PollingRelay: HTTPRelayPolicy {
    let proxy: SocketIOProxy
    let route: ProxyRoute
    let upstream: ProxyUpstream

    /// A polling request's (nil for the others, relayed unobserved).
    typealias Exchange = Polled?

    struct Polled {
        var engine: EngineRequest
        var connection: ConnectionTracker.Connection
        var method: HTTPMethod
        /// A handshake's head, for its session record.
        var handshake: HTTPRequestHead?
        var remote: String
    }

    var admission: ReadGate? { proxy.readGate }

    /// Polling requests wait while the capture is behind; the others (not recorded) go on.
    func waitsForCapture(_ request: RelayedRequest) -> Bool {
        (request.method == .GET || request.method == .POST)
            && EngineRequest.traffic(request.uri, under: proxy.configuration.path)?.transport == .polling
    }

    func route(_ request: RelayedRequest) -> HTTPRelayDecision<Exchange>? {
        let engine = EngineRequest.traffic(request.uri, under: proxy.configuration.path)
        // Engine.IO servers gzip polling bodies of 1 KB and more when asked; not asking keeps the
        // bodies readable (the same choice as dropping the permessage-deflate offer).
        let dropping: Set<String> = engine == nil ? [] : ["accept-encoding"]
        // Only GETs and POSTs carry Engine.IO packets; a CORS preflight (OPTIONS) on the same URL
        // is relayed without becoming a conn.
        guard let engine, engine.transport == .polling, request.method == .GET || request.method == .POST else {
            return .relay(HTTPRelayRoute(upstream: upstream.relayPool, exchange: nil, dropping: dropping, observesBodies: false))
        }
        if proxy.tracker.faults != nil, engine.sid != nil {
            // `--fault`: each packet decided before it goes on, the answer made whole.
            let responder = PollingResponder(proxy: proxy, route: route, upstream: upstream)
            return .answer { request, clientClosed in responder.respondWithFaults(to: request, as: engine, clientClosed: clientClosed) }
        }
        let exchange = Polled(
            engine: engine, connection: proxy.beginExchange(engine, to: upstream), method: request.method,
            handshake: engine.sid == nil ? request.fullHead : nil, remote: request.remote
        )
        return .relay(HTTPRelayRoute(upstream: upstream.relayPool, exchange: exchange, dropping: dropping, observesBodies: true))
    }

    func requestForwarded(_ exchange: Exchange, body: ByteBuffer) {
        guard let exchange, exchange.method == .POST else { return }
        proxy.observe(.pollingBody(Array(body.readableBytesView)), dir: .clientToServer, on: exchange.connection)
    }

    func responseForwarded(_ exchange: Exchange, status: HTTPResponseStatus, body: ByteBuffer, truncated: Bool) {
        guard let exchange else { return }
        if truncated {
            let message = "a polling answer larger than \(proxy.configuration.maxMessageSize) bytes: relayed, not observed"
            proxy.emit(.error(ErrorRecord(dir: .serverToClient, code: .messageTooLarge, message: message)), on: exchange.connection)
        } else {
            proxy.observeAnswer(
                status: status, body: Array(body.readableBytesView), to: exchange.handshake, remote: exchange.remote, engine: exchange.engine,
                method: exchange.method, on: exchange.connection, via: route, upstream: upstream
            )
        }
        proxy.activityEnded(on: exchange.connection)
    }

    func upstreamFailed(_ exchange: Exchange, _ error: HTTPClientError, on loop: any EventLoop) -> EventLoopFuture<HTTPResponse> {
        loop.makeFutureWithTask { [proxy, upstream] in
            let answer = await proxy.upstreamFailed(error, on: exchange?.connection, to: upstream)
            if let exchange { proxy.activityEnded(on: exchange.connection) }
            return answer
        }
    }

    func clientWentAway(_ exchange: Exchange) {
        guard let exchange else { return }
        _ = proxy.clientWentAway(on: exchange.connection)
        proxy.activityEnded(on: exchange.connection)
    }
}
