import NIOHTTP1

/// Who may read the inspector: the captured traffic carries tokens and cookies, and a browser
/// will send requests to `127.0.0.1` on behalf of any page it has open. So
/// - `Host` must name this server (loopback names, or the bound address) unless it serves other
///   machines: a page whose own name was rebound to 127.0.0.1 sends its own name (DNS rebinding);
/// - a request that says its `Origin` must come from the inspector's own page (a page elsewhere
///   may open a WebSocket to any address: cross-site WebSocket hijacking);
/// - everything but the page's own files needs the run's token, which only the printed URL
///   carries (as Jupyter's does), in the query or as `Authorization: Bearer TOKEN`.
public struct InspectorAccess: Sendable {
    /// The run's secret, as the URL carries it.
    public let token: String
    let boundHost: String
    let port: Int
    let allowRemote: Bool

    /// The paths served without the token: the page and its files, which hold no traffic.
    static let publicPaths: Set<Substring> = ["/", "/inspector.js", "/inspector.css"]

    public init(token: String = InspectorAccess.newToken(), boundHost: String, port: Int, allowRemote: Bool) {
        self.token = token
        self.boundHost = boundHost
        self.port = port
        self.allowRemote = allowRemote
    }

    /// 128 random bits as 32 hex digits.
    public static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let word = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - word.count) + word
        }.joined()
    }

    /// Why a request is refused, or nil when it is served.
    public struct Refusal: Sendable, Equatable {
        public var status: HTTPResponseStatus
        public var reason: String
    }

    public func refusal(for head: HTTPRequestHead) -> Refusal? {
        let hosts = head.headers["Host"]
        guard hosts.count == 1, let host = hosts.first?.lowercased() else {
            return Refusal(status: .badRequest, reason: "one Host header, please")
        }
        if !allowRemote, !acceptedHosts.contains(host) {
            return Refusal(
                status: .misdirectedRequest,
                reason: "siotap's inspector answers to \(acceptedHosts.sorted().map { "http://\($0)/" }.joined(separator: ", ")) only, not to \(host)"
            )
        }
        let origins = head.headers["Origin"]
        if !origins.isEmpty, origins.count > 1 || origins.first?.lowercased() != "http://" + host {
            return Refusal(status: .forbidden, reason: "the inspector serves its own page only, not pages of \(origins.joined(separator: ", "))")
        }
        let parts = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        if Self.publicPaths.contains(parts[0]) { return nil }
        // Scripts may send it as a bearer token rather than in the URL (where logs keep it).
        let bearer = head.headers.first(name: "Authorization").flatMap { value -> Substring? in
            let words = value.split(separator: " ", maxSplits: 1)
            return words.count == 2 && words[0].lowercased() == "bearer" ? words[1] : nil
        }
        let given = bearer ?? (parts.count > 1 ? Self.tokenParameter(in: parts[1]) : nil)
        guard let given, Self.sameSecret(given, token) else {
            return Refusal(status: .forbidden, reason: "the inspector needs the token of the URL siotap printed (…/?token=…)")
        }
        return nil
    }

    /// The `Host` values that name this server: the loopback names and the bound address, with
    /// the port (and without it on port 80, as browsers write it).
    var acceptedHosts: Set<String> {
        var names: Set<String> = ["localhost", "127.0.0.1", "[::1]"]
        names.insert(boundHost.contains(":") ? "[\(boundHost.lowercased())]" : boundHost.lowercased())
        var hosts = Set(names.map { "\($0):\(port)" })
        if port == 80 { hosts.formUnion(names) }
        return hosts
    }

    private static func tokenParameter(in query: Substring) -> Substring? {
        for pair in query.split(separator: "&") where pair.hasPrefix("token=") {
            return pair.dropFirst("token=".count)
        }
        return nil
    }

    /// Compares without stopping at the first difference, so timing says nothing of the token.
    private static func sameSecret(_ given: Substring, _ secret: String) -> Bool {
        let a = Array(given.utf8), b = Array(secret.utf8)
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
