/// How the Engine.IO layer behaves. Defaults are the JS server's.
public struct EngineConfiguration: Sendable {
    /// The path, with a trailing slash (`/socket.io/`).
    public var path: String
    /// Milliseconds between heartbeats.
    public var pingInterval: Int
    /// Milliseconds to wait for the other side's heartbeat answer.
    public var pingTimeout: Int
    /// Largest accepted polling body or WebSocket message, in bytes (`maxHttpBufferSize`).
    public var maxPayload: Int
    /// Accept Engine.IO 3 (socket.io 1.x/2.x) clients.
    public var allowEIO3: Bool
    /// Milliseconds a client may take to finish a transport upgrade.
    public var upgradeTimeout: Int
    /// Milliseconds a client may take to connect to a namespace before the session is closed.
    public var connectTimeout: Int
    /// CORS: `nil` sends no CORS headers (engine.io ≥ 4); `"*"` allows any origin; otherwise the
    /// allowed origins.
    public var corsOrigins: [String]?
    /// Set the `io` cookie (sid) on the handshake response, for load-balancer stickiness.
    public var cookie: Bool

    public init(
        path: String = "/socket.io/",
        pingInterval: Int = 25_000,
        pingTimeout: Int = 20_000,
        maxPayload: Int = 1_000_000,
        allowEIO3: Bool = true,
        upgradeTimeout: Int = 10_000,
        connectTimeout: Int = 45_000,
        corsOrigins: [String]? = nil,
        cookie: Bool = false
    ) {
        self.path = path.hasSuffix("/") ? path : path + "/"
        self.pingInterval = pingInterval
        self.pingTimeout = pingTimeout
        self.maxPayload = maxPayload
        self.allowEIO3 = allowEIO3
        self.upgradeTimeout = upgradeTimeout
        self.connectTimeout = connectTimeout
        self.corsOrigins = corsOrigins
        self.cookie = cookie
    }
}

/// The JS server's error answers (engine.io `Server.errors`).
public enum EngineErrorCode: Int, Sendable {
    case unknownTransport = 0
    case unknownSid = 1
    case badHandshakeMethod = 2
    case badRequest = 3
    case forbidden = 4
    case unsupportedProtocolVersion = 5

    public var message: String {
        switch self {
        case .unknownTransport: "Transport unknown"
        case .unknownSid: "Session ID unknown"
        case .badHandshakeMethod: "Bad handshake method"
        case .badRequest: "Bad request"
        case .forbidden: "Forbidden"
        case .unsupportedProtocolVersion: "Unsupported protocol version"
        }
    }
}
