/// Which way a frame went.
public enum Direction: String, Sendable, Hashable, Codable {
    case clientToServer = "c2s"
    case serverToClient = "s2c"

    public var reversed: Direction { self == .clientToServer ? .serverToClient : .clientToServer }
}
