/// The end of a connection.
public struct CloseRecord: Sendable, Hashable, Decodable {
    public enum Side: String, Sendable, Hashable, Codable { case client, server, proxy }
    public var by: Side
    public var reason: String

    public init(by: Side, reason: String) {
        self.by = by
        self.reason = reason
    }
}
