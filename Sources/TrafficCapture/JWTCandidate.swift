import JWTInspection

/// Finds tokens in the places handshakes carry them.
public enum JWTCandidate {
    /// The token in `text`: the whole string, or what follows `Bearer `.
    public static func token(in text: String) -> String? {
        var candidate = Substring(text)
        if candidate.count > 7, candidate.prefix(7).lowercased() == "bearer " { candidate = candidate.dropFirst(7) }
        let token = String(candidate.trimmingPrefix(" "))
        return JWTInspector.looksLikeJWT(token) ? token : nil
    }
}
