public import FaultInjection
public import JWTInspection
import SocketIOProtocol
public import SocketIOTransport

/// Where the proxy listens, where it forwards, and what it checks.
public struct ProxyConfiguration: Sendable {
    public var listenHost: String
    public var listenPort: Int
    public var upstreamHost: String
    public var upstreamPort: Int
    /// When set, only Engine.IO traffic on this path is decoded. Unset, any request whose query
    /// says `EIO=3|4` and `transport=polling|websocket` is, whatever its path; everything else is
    /// relayed plainly either way.
    public var path: String?
    /// Verifies the JWTs seen in handshakes when set.
    public var jwtKey: JWTVerificationKey?
    public var jwtLeeway: Double
    /// Largest polling body relayed (413 above it) and largest WebSocket message decoded (larger
    /// ones are relayed, not decoded); the default is well above any upstream's maxPayload.
    public var maxMessageSize: Int
    /// Seconds without traffic after which a polling conn is taken as gone (see the sweep).
    public var idleTimeout: Double
    /// Serve HTTPS and WSS to clients. Handshakes that fail are recorded (`proxy.tls_handshake`).
    public var tls: TLSServerSettings?
    /// Speak TLS to the upstream (`https://`, `wss://`).
    public var upstreamTLS: TLSClientSettings?
    /// Forward mode: an HTTP proxy for any host, not a front for one upstream (the upstream
    /// settings are then unused).
    public var forward: ForwardSettings?
    /// Forward mode refuses clients from other machines unless this is set (`--allow-remote`).
    public var allowRemote: Bool
    /// `--fault`'s rules. With none, bytes pass as they come and nothing is held.
    public var faults: FaultPlan?
    /// The sessions' Socket.IO parser (`--parser`); nil: each session's first packet tells it.
    public var parser: SocketIOParser?
    /// Set, live conns can be acted on (emits, breakpoints: the inspector's API, `--break`); each
    /// packet is then decided before it goes on, as with `--fault`.
    public var intervention: InterventionSettings?
    /// The built-in app behind the proxy when siotap runs it too (`siotap demo`): named in each
    /// `session` record, for replay.
    public var builtInApp: String?

    public init(
        listenHost: String = "127.0.0.1", listenPort: Int = 8080, upstreamHost: String = "127.0.0.1", upstreamPort: Int = 3000,
        path: String? = nil, jwtKey: JWTVerificationKey? = nil, jwtLeeway: Double = 0, maxMessageSize: Int = 64 << 20,
        idleTimeout: Double = 120, tls: TLSServerSettings? = nil, upstreamTLS: TLSClientSettings? = nil, forward: ForwardSettings? = nil,
        allowRemote: Bool = false, faults: FaultPlan? = nil, parser: SocketIOParser? = nil
    ) {
        self.parser = parser
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.upstreamHost = upstreamHost
        self.upstreamPort = upstreamPort
        self.path = path.map(EngineRequest.normalisedPath)
        self.jwtKey = jwtKey
        self.jwtLeeway = jwtLeeway
        self.maxMessageSize = maxMessageSize
        self.idleTimeout = idleTimeout
        self.tls = tls
        self.upstreamTLS = upstreamTLS
        self.forward = forward
        self.allowRemote = allowRemote
        self.faults = faults.flatMap { $0.rules.isEmpty ? nil : $0 }
    }

    /// Reverse mode serves whoever can reach its port (it listens on loopback unless told).
    var admitsRemoteClients: Bool { forward == nil || allowRemote }

    /// `https` when the proxy serves TLS.
    public var listenScheme: String { tls == nil ? "http" : "https" }
}

/// `--break` and `--break-timeout`, and whether live conns can be acted on at all.
public struct InterventionSettings: Sendable {
    /// Breakpoints given on the command line (`--break`'s filters), already checked.
    public var breakpoints: [String]
    /// Seconds a packet stays held before it goes on unchanged.
    public var breakTimeout: Double

    public init(breakpoints: [String] = [], breakTimeout: Double = 60) {
        self.breakpoints = breakpoints
        self.breakTimeout = breakTimeout
    }
}
