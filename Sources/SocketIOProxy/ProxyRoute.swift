import NIOCore
import NIOHTTP1
import SocketIOTransport
import Synchronization
import TLSCertificates
import TrafficCapture

/// A server the proxy forwards to, with its kept-alive connections.
final class ProxyUpstream: Sendable {
    let host: String
    let port: Int
    let tls: TLSClientSettings?
    let pool: HTTPConnectionPool
    /// Raw connections for reverse mode's byte relay (``PollingRelay``).
    let relayPool: ByteRelayPool

    init(host: String, port: Int, tls: TLSClientSettings?) {
        self.host = host
        self.port = port
        self.tls = tls
        // Room for every exchange a busy proxy has in flight (each long-poll holds one): a request
        // that finds none idle pays a connection set-up. Unused ones close after a few seconds.
        pool = HTTPConnectionPool(host: host, port: port, maxIdle: 512, tls: tls)
        relayPool = ByteRelayPool(host: host, port: port, tls: tls)
    }

    var description: String { "\(tls == nil ? "http" : "https")://\(host):\(port)" }

    /// What the upstream's certificate says, once a handshake has shown it.
    var certificate: SessionTLS.Certificate? {
        guard let der = tls?.lastPeerCertificate, let summary = CertificateSummary(derEncoded: der) else { return nil }
        return SessionTLS.Certificate(
            subject: summary.subject, issuer: summary.issuer,
            notAfter: RFC3339.format(secondsSince1970: summary.notValidAfterSeconds, fractionDigits: 0)
        )
    }
}

/// The client's side of an intercepted CONNECT: the host it asked for, and its TLS once agreed.
final class TunnelEnd: Sendable {
    let host: String
    let port: Int
    /// The address checked for a client on another machine, dialled instead of `host`.
    let address: String?
    let tls = Mutex<TLSHandshakeDetails?>(nil)

    init(host: String, port: Int, address: String? = nil) {
        self.host = host
        self.port = port
        self.address = address
    }

    var target: String { Authority.text(host: host, port: port) }
}

/// Where a client connection's requests go, and what its sessions' records say of the way: the
/// proxy's upstream (reverse mode), the host of an absolute URI or of a CONNECT (forward mode).
struct ProxyRoute: WebSocketRelayDelegate {
    enum Destination: Sendable {
        case upstream(ProxyUpstream, target: String?)
        case tunnel(TunnelEnd)
    }

    let proxy: SocketIOProxy
    let destination: Destination

    func handle(_ request: HTTPRequest) async -> HTTPResponse {
        do {
            return await proxy.handle(request, via: self, to: try upstream)
        } catch {
            return proxy.cannotReach(error)
        }
    }

    /// Reverse mode's requests are relayed as bytes on the event loop (``PollingRelay``); forward
    /// mode's (whose upstream is known only from each request) go on the async side.
    var httpRelay: (any HTTPRelayPolicy)? {
        guard case .upstream(let upstream, target: nil) = destination, proxy.configuration.forward == nil else { return nil }
        return PollingRelay(proxy: proxy, route: self, upstream: upstream)
    }

    func dialRelay(_ head: HTTPRequestHead, from remote: SocketAddress?, eventLoop: any EventLoop) async -> RelayDial {
        guard let upstream = try? upstream else { return .notDialled }
        let client = remote.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
        return await proxy.dialRelay(head, remote: client, eventLoop: eventLoop, via: self, to: upstream)
    }

    /// Inside a tunnel: TLS to the host when the client spoke TLS to siotap, plain HTTP when not.
    var upstream: ProxyUpstream {
        get throws {
            switch destination {
            case .upstream(let upstream, _): upstream
            case .tunnel(let end): try proxy.upstream(host: end.host, port: end.port, tls: end.tls.withLock { $0 } != nil, address: end.address)
            }
        }
    }

    var clientTLS: TLSHandshakeDetails? {
        if case .tunnel(let end) = destination { end.tls.withLock { $0 } } else { nil }
    }

    /// How the client spoke to siotap.
    var scheme: String {
        switch destination {
        case .upstream: proxy.configuration.forward == nil ? proxy.configuration.listenScheme : "http"
        case .tunnel(let end): end.tls.withLock { $0 } == nil ? "http" : "https"
        }
    }

    var target: String? {
        switch destination {
        case .upstream(_, let target): target
        case .tunnel(let end): end.target
        }
    }
}
