/// A conn's id in a capture (`conn`): `c` and its number, 1, 2, 3… in the order conns began.
/// Made here only, for the proxy and `siotap import` alike; `c0` is a conn that is not recorded.
public struct ConnectionID: Sendable, Hashable, CustomStringConvertible {
    public let number: Int

    public init(number: Int) {
        self.number = number
    }

    /// A conn the proxy makes after it stopped: never written.
    public static let unrecorded = ConnectionID(number: 0)

    public var description: String { "c\(number)" }

    /// Reads `c12`; nil for anything else.
    public init?(_ text: String) {
        guard text.hasPrefix("c"), let number = Int(text.dropFirst()), number >= 0, text == "c\(number)" else { return nil }
        self.number = number
    }
}
