/// Why an Engine.IO session ended, worded as the JavaScript server words it (the Socket.IO layer
/// hands the text to `disconnect` handlers).
enum EngineCloseReason: Sendable, Hashable, CustomStringConvertible {
    /// The client closed (a close packet, or its WebSocket ended).
    case transportClose
    /// No pong (v4) or ping (v3) within the heartbeat's time.
    case pingTimeout
    /// A payload or packet that does not decode.
    case parseError
    /// A second long-poll while one was waiting.
    case multiplePollRequests
    /// A v4 client that pings, or a v3 client that pongs.
    case invalidHeartbeatDirection
    /// A v4 POST with an `application/octet-stream` body.
    case binaryPost
    case serverShuttingDown
    /// A reason of the layer above (the Socket.IO server, an app, `siotap mock`).
    case application(String)

    var description: String {
        switch self {
        case .transportClose: "transport close"
        case .pingTimeout: "ping timeout"
        case .parseError: "parse error"
        case .multiplePollRequests: "multiple poll requests"
        case .invalidHeartbeatDirection: "invalid heartbeat direction"
        case .binaryPost: "binary POST"
        case .serverShuttingDown: "server shutting down"
        case .application(let text): text
        }
    }
}
