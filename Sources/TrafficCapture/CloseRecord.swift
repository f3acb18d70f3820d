public import SocketIOProtocol

/// The end of a connection.
public struct CloseRecord: Sendable, Hashable, Decodable {
    public var by: Peer
    public var reason: String

    public init(by: Peer, reason: String) {
        self.by = by
        self.reason = reason
    }
}
