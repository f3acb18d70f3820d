import NIOCore
import NIOHTTP1
import SocketIOProtocol
import SocketIOTransport
import TrafficCapture
import TrafficObservation

/// The proxy's HTTP, relayed as bytes (``HTTPRelayFront``): every request but upgrades and
/// CONNECTs goes on as it came, on a kept upstream connection, and a polling request's bodies are
/// observed once they went on. With `--fault`, a known session's polls are gathered whole instead
/// and answered through ``PollingResponder``, each packet decided before it goes on. What the
/// relay does not take (a chunked request, HTTP/1.0) goes the codec's way,
/// ``SocketIOProxy/handle(_:via:to:)``, which observes the same.
///
/// Reverse mode has one for its upstream; forward mode (``ForwardFront``) makes one per request,
/// for the host its absolute URI names.
struct PollingRelay: HTTPRelayPolicy {
    let proxy: SocketIOProxy
    let route: ProxyRoute
    let upstream: ProxyUpstream
    /// Forward mode: the request's target in origin form, sent upstream instead of its absolute URI.
    var target: String?

    /// A relayed request: where it went, and for a polling request what it observes.
    final class Exchange: Sendable {
        let upstream: ProxyUpstream
        let polled: Polled?
        /// A page's CORS preflight for Engine.IO: recorded only if the answer refuses its origin.
        let preflight: Preflight?

        init(upstream: ProxyUpstream, polled: Polled?, preflight: Preflight? = nil) {
            self.upstream = upstream
            self.polled = polled
            self.preflight = preflight
        }

        /// The relay front hands back the exchange the policy gave it.
        static func of(_ exchange: HTTPRelayExchange) -> Exchange {
            unsafeDowncast(exchange, to: Exchange.self)
        }
    }

    struct Preflight {
        var head: HTTPRequestHead
        var engine: EngineRequest
        var remote: String
        var route: ProxyRoute
    }

    struct Polled {
        var engine: EngineRequest
        var connection: ProxyConnection
        var method: HTTPMethod
        /// A handshake's head and client, for its session record (the address is made into text
        /// for handshakes only: every other poll would pay for it).
        var handshake: (head: HTTPRequestHead, remote: String)?
        var route: ProxyRoute
    }

    var admission: ReadGate? { proxy.readGate }

    static let engineIODropped = ["accept-encoding"]

    /// Polling requests wait while the capture is behind; the others (not recorded) go on.
    func waitsForCapture(_ request: RelayedRequest) -> Bool {
        (request.method == .GET || request.method == .POST)
            && EngineRequest.traffic(request.uri, under: proxy.configuration.path)?.transport == .polling
    }

    func route(_ request: RelayedRequest) -> HTTPRelayDecision? {
        let engine = EngineRequest.traffic(request.uri, under: proxy.configuration.path)
        // Engine.IO servers gzip polling bodies of 1 KB and more when asked; not asking keeps the
        // bodies readable (the same choice as dropping the permessage-deflate offer).
        let dropping = engine == nil ? [] : Self.engineIODropped
        // Only GETs and POSTs carry Engine.IO packets; a CORS preflight (OPTIONS) on the same URL
        // is relayed without becoming a conn.
        guard let engine, engine.transport == .polling, request.method == .GET || request.method == .POST else {
            if let engine, request.method == .OPTIONS {
                // A page's preflight: its answer is looked at (a refused origin is all a browser
                // then shows), and it becomes a conn only if it refuses.
                let head = request.fullHead
                let preflight = head.headers.contains(name: "Origin") ? Preflight(head: head, engine: engine, remote: request.remote, route: route) : nil
                let exchange = Exchange(upstream: upstream, polled: nil, preflight: preflight)
                return .relay(HTTPRelayRoute(upstream: upstream.relayPool, exchange: exchange, dropping: dropping, observesBodies: false, observesAnswerHeaders: preflight != nil, target: target))
            }
            let exchange = Exchange(upstream: upstream, polled: nil)
            return .relay(HTTPRelayRoute(upstream: upstream.relayPool, exchange: exchange, dropping: dropping, observesBodies: false, target: target))
        }
        if proxy.tracker.faults != nil, engine.sid != nil {
            // `--fault`: each packet decided before it goes on, the answer made whole.
            let responder = PollingResponder(proxy: proxy, route: route, upstream: upstream)
            return .answer { request, clientClosed in responder.respondWithFaults(to: request, as: engine, clientClosed: clientClosed) }
        }
        let polled = Polled(
            engine: engine, connection: proxy.beginExchange(engine, to: upstream), method: request.method,
            handshake: engine.sid == nil ? (request.fullHead, request.remote) : nil, route: route
        )
        let exchange = Exchange(upstream: upstream, polled: polled)
        return .relay(HTTPRelayRoute(
            upstream: upstream.relayPool, exchange: exchange, dropping: dropping, observesBodies: true, observesAnswerHeaders: engine.sid == nil, target: target
        ))
    }

    func requestForwarded(_ exchange: HTTPRelayExchange, body: ByteBuffer) {
        Self.requestForwarded(.of(exchange), body: body, proxy: proxy)
    }

    func responseForwarded(_ exchange: HTTPRelayExchange, status: HTTPResponseStatus, headers: [(name: String, value: String)], body: ByteBuffer, truncated: Bool) {
        Self.responseForwarded(.of(exchange), status: status, headers: headers, body: body, truncated: truncated, proxy: proxy)
    }

    func upstreamFailed(_ exchange: HTTPRelayExchange, _ error: HTTPClientError, on loop: any EventLoop) -> EventLoopFuture<HTTPResponse> {
        Self.upstreamFailed(.of(exchange), error, on: loop, proxy: proxy)
    }

    func clientWentAway(_ exchange: HTTPRelayExchange) {
        Self.clientWentAway(.of(exchange), proxy: proxy)
    }

    func requestCut(_ exchange: HTTPRelayExchange, relayed: Int, announced: Int) {
        Self.requestCut(.of(exchange), relayed: relayed, announced: announced, proxy: proxy)
    }

    // What happens to an exchange depends on it alone (and the proxy): forward mode's relay,
    // which routes each request elsewhere, observes its exchanges the same way.

    static func requestForwarded(_ exchange: Exchange, body: ByteBuffer, proxy: SocketIOProxy) {
        guard let polled = exchange.polled, polled.method == .POST else { return }
        proxy.observe(.pollingBody(Array(body.readableBytesView)), dir: .clientToServer, on: polled.connection)
    }

    static func responseForwarded(
        _ exchange: Exchange, status: HTTPResponseStatus, headers: [(name: String, value: String)], body: ByteBuffer, truncated: Bool, proxy: SocketIOProxy
    ) {
        if let preflight = exchange.preflight {
            proxy.observePreflight(preflight.head, answer: status, headers: headers, engine: preflight.engine, remote: preflight.remote, via: preflight.route, to: exchange.upstream)
            return
        }
        guard let polled = exchange.polled else { return }
        if truncated {
            let message = "a polling answer larger than \(proxy.configuration.maxMessageSize) bytes: relayed, not observed"
            proxy.emit(.error(ErrorRecord(dir: .serverToClient, code: .messageTooLarge, message: message)), on: polled.connection)
        } else {
            proxy.observeAnswer(
                status: status, headers: headers, body: Array(body.readableBytesView), to: polled.handshake, engine: polled.engine,
                method: polled.method, on: polled.connection, via: polled.route, upstream: exchange.upstream
            )
        }
        proxy.activityEnded(on: polled.connection)
    }

    static func upstreamFailed(_ exchange: Exchange, _ error: HTTPClientError, on loop: any EventLoop, proxy: SocketIOProxy) -> EventLoopFuture<HTTPResponse> {
        loop.makeFutureWithTask {
            let answer = await proxy.upstreamFailed(error, on: exchange.polled?.connection, to: exchange.upstream)
            if let polled = exchange.polled { proxy.activityEnded(on: polled.connection) }
            return answer
        }
    }

    static func requestCut(_ exchange: Exchange, relayed: Int, announced: Int, proxy: SocketIOProxy) {
        guard let polled = exchange.polled else { return }
        let message = "the server answered before the whole request came: a \(polled.method.rawValue) body of \(announced) bytes, \(relayed) of them relayed"
        proxy.emit(.error(ErrorRecord(dir: .clientToServer, code: .requestCut, message: message)), on: polled.connection)
    }

    static func clientWentAway(_ exchange: Exchange, proxy: SocketIOProxy) {
        guard let polled = exchange.polled else { return }
        _ = proxy.clientWentAway(on: polled.connection)
        proxy.activityEnded(on: polled.connection)
    }
}
