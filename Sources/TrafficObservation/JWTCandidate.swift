public import SocketIOProtocol
public import TrafficCapture

/// Finds tokens in the places handshakes carry them.
public enum JWTCandidate {
    /// The token in `text`: the whole string, or what follows `Bearer `.
    public static func token(in text: String) -> String? {
        var candidate = Substring(text)
        if candidate.count > 7, candidate.prefix(7).lowercased() == "bearer " { candidate = candidate.dropFirst(7) }
        let token = String(candidate.trimmingPrefix(" "))
        return JWTText.looksLikeJWT(token) ? token : nil
    }

    /// The tokens a handshake request carries where Socket.IO apps put them, with their source as
    /// `jwt` records name it: query parameters (`query.token`), the first `Authorization` header
    /// (`header.authorization`), cookies (`cookie.NAME`). The proxy and `siotap import` share it.
    public static func handshakeTokens(query: [QueryPair], headers: some Sequence<(name: String, value: String)>) -> [(token: String, source: TokenSource)] {
        var found: [(token: String, source: TokenSource)] = []
        for pair in query {
            if let token = token(in: pair.value) { found.append((token, .query(name: pair.name))) }
        }
        var authorizationSeen = false
        for header in headers {
            switch header.name.lowercased() {
            case "authorization" where !authorizationSeen:
                authorizationSeen = true
                if let token = token(in: header.value) { found.append((token, .authorizationHeader)) }
            case "cookie":
                for pair in header.value.split(separator: ";") {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    guard parts.count == 2 else { continue }
                    if let token = token(in: String(parts[1])) { found.append((token, .cookie(name: String(parts[0].drop { $0 == " " })))) }
                }
            default:
                break
            }
        }
        return found
    }
}
