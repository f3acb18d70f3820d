/// Where a handshake carried a token, as `jwt` records name it: `auth.<field>` (the CONNECT
/// payload; nested fields dotted, items `[i]`), `query.<name>`, `header.authorization`,
/// `cookie.<name>`.
public enum TokenSource: Sendable, Hashable, CustomStringConvertible, Decodable, ExpressibleByStringLiteral {
    /// In the CONNECT payload, at this path below it (`.token`, `.a.b`, `[0]`, or empty: the
    /// payload itself).
    case auth(path: String)
    case query(name: String)
    case authorizationHeader
    case cookie(name: String)
    /// A name this version does not know, read from a capture: kept as it is.
    case other(String)

    public var description: String {
        switch self {
        case .auth(let path): "auth" + path
        case .query(let name): "query." + name
        case .authorizationHeader: "header.authorization"
        case .cookie(let name): "cookie." + name
        case .other(let text): text
        }
    }

    /// The source a record's text names.
    public init(_ text: String) {
        if text == "header.authorization" {
            self = .authorizationHeader
        } else if text.hasPrefix("query.") {
            self = .query(name: String(text.dropFirst(6)))
        } else if text.hasPrefix("cookie.") {
            self = .cookie(name: String(text.dropFirst(7)))
        } else if text.hasPrefix("auth"), text.count == 4 || [".", "["].contains(text.dropFirst(4).first) {
            self = .auth(path: String(text.dropFirst(4)))
        } else {
            self = .other(text)
        }
    }

    /// `"query.token"`: as a record names it.
    public init(stringLiteral text: String) {
        self.init(text)
    }

    public init(from decoder: any Decoder) throws {
        self.init(try decoder.singleValueContainer().decode(String.self))
    }
}
