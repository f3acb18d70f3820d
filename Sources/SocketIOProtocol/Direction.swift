/// Which way a frame went.
public enum Direction: String, Sendable, Hashable, Codable {
    case clientToServer = "c2s"
    case serverToClient = "s2c"

    public var reversed: Direction { self == .clientToServer ? .serverToClient : .clientToServer }
}

extension Direction {
    /// The way a frame goes that `sender` sent.
    public init(from sender: Peer) {
        self = sender == .client ? .clientToServer : .serverToClient
    }
}

/// Who: one end of a Socket.IO connection, or the proxy between them (a conn closed by the proxy).
public enum Peer: String, Sendable, Hashable, Codable {
    case client, server, proxy
}
