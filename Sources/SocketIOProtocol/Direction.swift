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

/// A value for each direction, kept in two fields: a dictionary keyed by direction hashed it for
/// every frame, which showed in profiles of the proxy and the importer.
public struct PerDirection<Value> {
    public var clientToServer: Value
    public var serverToClient: Value

    public init(_ both: Value) {
        clientToServer = both
        serverToClient = both
    }

    public subscript(dir: Direction) -> Value {
        get { dir == .clientToServer ? clientToServer : serverToClient }
        // Yields the stored value, so that changing it in place does not copy it first.
        _modify {
            switch dir {
            case .clientToServer: yield &clientToServer
            case .serverToClient: yield &serverToClient
            }
        }
    }
}

extension PerDirection: Sendable where Value: Sendable {}
extension PerDirection: Equatable where Value: Equatable {}
extension PerDirection: Hashable where Value: Hashable {}
