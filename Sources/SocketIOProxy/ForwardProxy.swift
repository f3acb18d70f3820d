import NIOCore
import NIOHTTP1
public import SocketIOTransport
import SocketIOProtocol
import Synchronization
import TrafficCapture

/// What forward mode needs beyond reverse mode's settings.
public struct ForwardSettings: Sendable {
    /// The certificates presented to clients, minted per name by the local CA.
    public var certificates: TLSInterception
    /// What the real hosts' certificates are checked against.
    public var upstreamTrust: TLSClientSettings.Trust
    /// `SSLKEYLOGFILE`, for the connections to the real hosts.
    public var keyLogPath: String?
    /// Whether a CONNECT to this host and port is intercepted (decoded and recorded); when not,
    /// its bytes are tunnelled as they are (`--ignore-hosts`, `--allow-hosts`).
    public var intercepts: @Sendable (_ host: String, _ port: Int) -> Bool
    /// Whether `--allow-hosts` names this host: clients on other machines may then reach it even
    /// on this machine's loopback (see ``ForwardAccess``).
    public var explicitlyAllowed: @Sendable (_ host: String, _ port: Int) -> Bool

    public init(
        certificates: TLSInterception, upstreamTrust: TLSClientSettings.Trust = .system, keyLogPath: String? = nil,
        intercepts: @escaping @Sendable (String, Int) -> Bool = { _, _ in true },
        explicitlyAllowed: @escaping @Sendable (String, Int) -> Bool = { _, _ in false }
    ) {
        self.certificates = certificates
        self.upstreamTrust = upstreamTrust
        self.keyLogPath = keyLogPath
        self.intercepts = intercepts
        self.explicitlyAllowed = explicitlyAllowed
    }
}

/// Forward mode's listener: an HTTP proxy. `CONNECT host:port` is intercepted (TLS ended with a
/// certificate for the name the client asks, requests served inside) or passed through untouched;
/// a request with an absolute URI goes to its host. Inside, traffic is observed as in
/// reverse mode, each request routed to the host it was meant for.
struct ForwardFront: WebSocketRelayDelegate {
    let proxy: SocketIOProxy
    let settings: ForwardSettings

    func handle(_ request: HTTPRequest) async -> HTTPResponse {
        guard let target = AbsoluteURI(request.uri) else {
            return HTTPResponse(
                status: .badRequest, headers: ["Content-Type": "text/plain; charset=utf-8"],
                body: Array("siotap proxy is in forward mode: use it as an HTTP proxy (absolute http:// URIs, or CONNECT)\n".utf8),
                closeConnection: true
            )
        }
        let pin: String?
        switch await access(from: request.remoteAddress, to: target.host, port: target.port) {
        case .allowed(let address): pin = address
        case .refused(let reason): return forbidden(reason, recorded: "\(request.remote): \(reason)")
        }
        var inner = request
        inner.head.uri = target.originForm
        do {
            return try await route(to: target, address: pin).handle(inner)
        } catch {
            return proxy.cannotReach(error)
        }
    }

    func dialRelay(_ head: HTTPRequestHead, from remote: SocketAddress?, eventLoop: any EventLoop) async -> RelayDial {
        guard let target = AbsoluteURI(head.uri) else { return .notDialled }
        // A refused upgrade is answered by handle(_:), which says why.
        guard case .allowed(let pin) = await access(from: remote, to: target.host, port: target.port),
              let route = try? route(to: target, address: pin)
        else { return .notDialled }
        var inner = head
        inner.uri = target.originForm
        return await route.dialRelay(inner, from: remote, eventLoop: eventLoop)
    }

    /// A local client's requests with absolute URIs are relayed as bytes, to the host each names
    /// (the same policy as reverse mode's, per request). What needs an answer first (a remote
    /// client's access, looked up by name) and `--fault` go the codec's way.
    var httpRelay: (any HTTPRelayPolicy)? {
        proxy.tracker.faults == nil ? ForwardRelay(front: self) : nil
    }

    fileprivate func route(to target: AbsoluteURI, address: String?) throws -> ProxyRoute {
        let upstream = try proxy.upstream(host: target.host, port: target.port, tls: target.tls, address: address)
        return ProxyRoute(proxy: proxy, destination: .upstream(upstream, target: target.authority))
    }

    /// Whether the client at `remote` may reach `host:port`: always from this machine; from
    /// another, as ``ForwardAccess`` says.
    private func access(from remote: SocketAddress?, to host: String, port: Int) async -> ForwardAccess.Verdict {
        guard proxy.configuration.allowRemote, !ForwardAccess.isLocal(remote) else { return .allowed(pin: nil) }
        let rules = ForwardAccess(ownPorts: proxy.ownPorts, localAddresses: proxy.machineAddresses, explicitlyAllowed: settings.explicitlyAllowed)
        if rules.explicitlyAllowed(host, port) { return .allowed(pin: nil) }
        return rules.verdict(host: host, port: port, resolved: await ForwardAccess.resolve(host, port: port))
    }

    /// The 403 for a target a remote client may not reach, and its record.
    private func forbidden(_ reason: String, recorded message: String) -> HTTPResponse {
        proxy.tracker.emit(.error(ErrorRecord(dir: nil, code: .forbiddenTarget, message: message)), on: nil)
        return HTTPResponse(
            status: .forbidden, headers: ["Content-Type": "text/plain; charset=utf-8"], body: Array("siotap proxy: \(reason)\n".utf8), closeConnection: true
        )
    }

    func tunnel(_ head: HTTPRequestHead, from remote: SocketAddress?, eventLoop: any EventLoop) async -> TunnelPlan {
        let client = remote.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
        guard let (host, port) = Authority.parse(head.uri) else {
            return refuse(.badRequest, "CONNECT wants host:port, not '\(head.uri)'", client: client)
        }
        let target = Authority.text(host: host, port: port)
        let pin: String?
        switch await access(from: remote, to: host, port: port) {
        case .allowed(let address): pin = address
        case .refused(let reason): return .refuse(forbidden(reason, recorded: "\(client): CONNECT \(target): \(reason)"))
        }
        guard settings.intercepts(host, port) else {
            do {
                return .pass(try await TunnelHandler.dial(host: pin ?? host, port: port, eventLoop: eventLoop))
            } catch {
                return refuse(.badGateway, "cannot reach \(target): \(SocketErrorText.describe(error))", client: client)
            }
        }
        // A tunnel to nowhere is a 502 now, rather than a handshake that fails later.
        do {
            try await TunnelHandler.probe(host: pin ?? host, port: port, eventLoop: eventLoop)
        } catch {
            return refuse(.badGateway, "cannot reach \(target): \(SocketErrorText.describe(error))", client: client)
        }
        let end = TunnelEnd(host: host, port: port, address: pin)
        let tracker = proxy.tracker
        return .intercept(TunnelInterception(
            certificates: settings.certificates, defaultName: host,
            delegate: ProxyRoute(proxy: proxy, destination: .tunnel(end)),
            established: { details in end.tls.withLock { $0 = details } },
            // A tunnel that fails before any Engine.IO traffic (a browser's background services,
            // pinned certificates) is kept as info, not an error of the traffic being debugged.
            handshakeFailed: { remote, reason in
                tracker.emit(.info(ErrorRecord(dir: .clientToServer, code: .tlsHandshake, message: "\(remote) (CONNECT \(target)): \(reason)")), on: nil)
            },
            unreadable: { remote, reason in
                tracker.emit(.info(ErrorRecord(dir: .clientToServer, code: .badTunnel, message: "\(remote) (CONNECT \(target)): \(reason)")), on: nil)
            }
        ))
    }

    private func refuse(_ status: HTTPResponseStatus, _ reason: String, client: String) -> TunnelPlan {
        proxy.tracker.emit(.info(ErrorRecord(dir: nil, code: .badTunnel, message: "\(client): \(reason)")), on: nil)
        return .refuse(HTTPResponse(
            status: status, headers: ["Content-Type": "text/plain; charset=utf-8"], body: Array("siotap proxy: \(reason)\n".utf8),
            closeConnection: true
        ))
    }
}

/// Forward mode's byte relay: each request's absolute URI names its upstream; the rest is
/// ``PollingRelay``'s, with the request's target in origin form.
private struct ForwardRelay: HTTPRelayPolicy {
    let front: ForwardFront

    var admission: ReadGate? { front.proxy.readGate }

    func waitsForCapture(_ request: RelayedRequest) -> Bool {
        guard let target = AbsoluteURI(request.uri), let polling = polling(target, request) else { return false }
        return polling.waitsForCapture(request.retargeted(target.originForm))
    }

    func route(_ request: RelayedRequest) -> HTTPRelayDecision? {
        // The codec's way answers what is not an absolute URI (a 400 saying why), and a client on
        // another machine, whose access is checked against the target's addresses first.
        guard let target = AbsoluteURI(request.uri), !front.proxy.configuration.allowRemote || ForwardAccess.isLocal(request.remoteAddress) else {
            return nil
        }
        return polling(target, request)?.route(request.retargeted(target.originForm))
    }

    private func polling(_ target: AbsoluteURI, _ request: RelayedRequest) -> PollingRelay? {
        guard let route = try? front.route(to: target, address: nil), case .upstream(let upstream, _) = route.destination else { return nil }
        return PollingRelay(proxy: front.proxy, route: route, upstream: upstream, target: target.originForm)
    }

    func requestForwarded(_ exchange: HTTPRelayExchange, body: ByteBuffer) {
        PollingRelay.requestForwarded(.of(exchange), body: body, proxy: front.proxy)
    }

    func responseForwarded(_ exchange: HTTPRelayExchange, status: HTTPResponseStatus, headers: [(name: String, value: String)], body: ByteBuffer, truncated: Bool) {
        PollingRelay.responseForwarded(.of(exchange), status: status, headers: headers, body: body, truncated: truncated, proxy: front.proxy)
    }

    func upstreamFailed(_ exchange: HTTPRelayExchange, _ error: HTTPClientError, on loop: any EventLoop) -> EventLoopFuture<HTTPResponse> {
        PollingRelay.upstreamFailed(.of(exchange), error, on: loop, proxy: front.proxy)
    }

    func clientWentAway(_ exchange: HTTPRelayExchange) {
        PollingRelay.clientWentAway(.of(exchange), proxy: front.proxy)
    }

    func requestCut(_ exchange: HTTPRelayExchange, relayed: Int, announced: Int) {
        PollingRelay.requestCut(.of(exchange), relayed: relayed, announced: announced, proxy: front.proxy)
    }
}
