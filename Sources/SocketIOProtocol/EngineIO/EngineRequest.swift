/// The Engine.IO transport a request or frame travels on.
public enum EngineTransport: String, Sendable, Hashable, Codable, CaseIterable {
    case polling
    case websocket
}

/// What an HTTP request target (`/path?query`) says to Engine.IO: the one parser the server, the
/// proxy and the clients share.
public struct EngineRequest: Sendable, Hashable {
    /// The path, with a trailing `/` (as Engine.IO servers match it).
    public var path: String
    public var version: EngineIOVersion
    public var transport: EngineTransport
    public var sid: String?
    /// `b64=1`: an Engine.IO 3 polling client that cannot take binary payloads.
    public var base64: Bool
    /// Every query pair, decoded, in order.
    public var query: [QueryPair]

    /// Why a request is not Engine.IO traffic, for a server that owns the path and answers it.
    public enum Refusal: Error, Sendable, Hashable {
        case unsupportedVersion
        case unknownTransport
    }

    /// A request is Engine.IO traffic when its query says `EIO=3|4` and `transport=polling|websocket`,
    /// whatever its path: apps mount Engine.IO anywhere (`/ws/socket.io/`, `/chat/`).
    public init(target: String) throws(Refusal) {
        let (path, query) = Self.split(target)
        func value(_ name: String) -> String? { query.first { $0.name == name }?.value }
        guard let version = value("EIO").flatMap(Int.init).flatMap(EngineIOVersion.init(rawValue:)) else {
            throw .unsupportedVersion
        }
        guard let transport = value("transport").flatMap(EngineTransport.init(rawValue:)) else { throw .unknownTransport }
        self.path = path
        self.version = version
        self.transport = transport
        self.sid = value("sid")
        self.base64 = value("b64") != nil
        self.query = query
    }

    /// The request, or `nil` for anything that is not Engine.IO traffic (or not under `path`, when
    /// one is given).
    public static func traffic(_ target: String, under path: String? = nil) -> EngineRequest? {
        guard let request = try? EngineRequest(target: target) else { return nil }
        if let path, !isNormalised(request.path, path) { return nil }
        return request
    }

    /// Whether `path`, normalised, is `normalised` (without making the normalised text: this is
    /// asked of every request the proxy relays).
    private static func isNormalised(_ normalised: String, _ path: String) -> Bool {
        if path.utf8.last == UInt8(ascii: "/") { return normalised == path }
        return normalised.utf8.count == path.utf8.count + 1 && normalised.utf8.starts(with: path.utf8)
    }

    /// The path of a request target, with a trailing `/`.
    public static func path(of target: String) -> String { split(target).path }

    /// `/socket.io` and `/socket.io/` are the same mount point. (A URL's path is bytes: its last
    /// byte, not its last Character, which a combining or prepended scalar would make another.)
    public static func normalisedPath(_ path: some StringProtocol) -> String {
        let last = path.utf8.withContiguousStorageIfAvailable { $0.last } ?? Array(path.utf8).last
        return last == UInt8(ascii: "/") ? String(path) : path + "/"
    }

    private static func split(_ target: String) -> (path: String, query: [QueryPair]) {
        // The `?` found among the bytes, not the Characters: every request the proxy relays comes
        // here, and splitting a String by Character cost a polling round trip about 2 µs.
        guard let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return (normalisedPath(target), []) }
        let query = target[target.utf8.index(after: mark)...]
        var pairs: [QueryPair] = []
        pairs.reserveCapacity(query.utf8.count { $0 == UInt8(ascii: "&") } + 1)
        QueryString.forEachPair(in: query) { pairs.append(QueryPair(name: $0, value: $1)) }
        return (normalisedPath(target[..<mark]), pairs)
    }
}

/// One decoded `name=value` pair of a query string.
public struct QueryPair: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}
