/// Compact JWS text read without verifying it: whether a string is a token, and its header and
/// claims. Pure string work, here so that recording a token's place needs no crypto library.
public enum JWTText {
    /// Three dot-separated parts, the first a base64url JSON header with an `alg`.
    public static func looksLikeJWT(_ text: String) -> Bool {
        let parts = text.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count >= 10, parts[1].count >= 2 else { return false }
        guard let header = try? decodeSegment(parts[0], name: "header") else { return false }
        return header["alg"]?.stringValue != nil
    }

    /// The header and claims of a token, unverified; `nil` when it is not a JWS compact token.
    public static func parts(of token: String) -> (header: JSONValue, claims: JSONValue)? {
        let parts = token.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3, let header = try? decodeSegment(parts[0], name: "header"),
            let claims = try? decodeSegment(parts[1], name: "claims"), header.objectValue != nil, claims.objectValue != nil
        else { return nil }
        return (header, claims)
    }

    /// Why a part does not decode, in words for a report.
    public struct SegmentFailure: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// One base64url part as JSON.
    public static func decodeSegment(_ segment: Substring.UTF8View.SubSequence, name: String) throws(SegmentFailure) -> JSONValue {
        guard let bytes = Base64.decodeURL(segment) else { throw SegmentFailure(description: "the \(name) is not base64url") }
        do { return try JSONValue.parse(bytes: bytes) } catch { throw SegmentFailure(description: "the \(name) is not JSON (\(error))") }
    }
}
