/// Request targets other than a path (RFC 9110 §7.1): the `host:port` of a CONNECT, and absolute
/// URIs (a forward proxy's requests, a HAR file's entries); and how a host and port are written.
public enum Authority {
    /// `host:port`, IPv6 hosts in brackets, the port 1 to 65535.
    /// The longest host name DNS allows (RFC 1035: 253 characters written out); longer is no host.
    public static let longestHost = 253

    public static func parse(_ text: some StringProtocol) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        var host = text[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = host.dropFirst().dropLast()
        } else if host.contains(":") {
            return nil
        }
        guard !host.isEmpty, host.utf8.count <= longestHost, !host.contains(where: { $0 == "/" || $0 == " " || $0 == "@" }) else { return nil }
        return (String(host), port)
    }

    /// `host:port`, an IPv6 address in brackets.
    public static func text(host: String, port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// An absolute URI's parts: `http://` and `ws://` (as aiohttp sends a WebSocket through a proxy),
/// or `https://` and `wss://`; the port the scheme's when none is written; the fragment dropped.
public struct AbsoluteURI: Sendable, Equatable {
    public var tls: Bool
    public var host: String
    public var port: Int
    /// `/path?query`, at least `/`.
    public var originForm: String

    public init(tls: Bool, host: String, port: Int, originForm: String) {
        self.tls = tls
        self.host = host
        self.port = port
        self.originForm = originForm
    }

    public init?(_ uri: String) {
        guard let separator = uri.firstRange(of: "://") else { return nil }
        switch uri[..<separator.lowerBound].lowercased() {
        case "http", "ws": tls = false
        case "https", "wss": tls = true
        default: return nil
        }
        let rest = uri[separator.upperBound...]
        let end = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        let hostPort = rest[..<end]
        originForm = String(rest[end...].prefix { $0 != "#" })
        if originForm.isEmpty || originForm.hasPrefix("?") { originForm = "/" + originForm }
        if let parsed = Authority.parse(hostPort) {
            (host, port) = parsed
            return
        }
        // No port: the scheme's. Only a bracketed IPv6 address may hold a colon.
        let bracketed = hostPort.hasPrefix("[") && hostPort.hasSuffix("]")
        let bare = bracketed ? hostPort.dropFirst().dropLast() : hostPort
        guard !bare.isEmpty, !bare.contains(where: { $0 == "@" || $0 == " " || (!bracketed && $0 == ":") }) else { return nil }
        host = String(bare)
        port = tls ? 443 : 80
    }

    /// `host:port`.
    public var authority: String { Authority.text(host: host, port: port) }
}
