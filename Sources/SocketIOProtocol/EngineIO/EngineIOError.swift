/// A frame, packet or payload that is not valid Engine.IO.
public struct EngineIOError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// An empty packet, where a type digit was expected.
        case emptyPacket = "empty packet"
        /// A type that is not 0-6.
        case unknownPacketType = "unknown packet type"
        /// `b` + base64 whose base64 does not decode.
        case invalidBase64 = "invalid base64"
        /// A v3 `<len>:` length that is missing, not a number, or longer than what follows.
        case invalidLength = "invalid payload length"
        /// A v3 XHR2 binary payload that is cut short or has a bad marker byte.
        case invalidBinaryPayload = "invalid binary payload"
        /// A text frame that is not UTF-8.
        case invalidUTF8 = "invalid UTF-8"
        /// An empty polling body where a payload was required.
        case emptyPayload = "empty payload"
        /// A binary packet on a transport or version that cannot carry it.
        case unexpectedBinary = "binary data where text was expected"
        /// The open packet's JSON lacks a field or has the wrong type.
        case invalidHandshake = "invalid open packet"
    }

    public let code: Code
    /// The byte offset into the frame or payload where decoding failed.
    public let offset: Int
    /// A short excerpt of the offending input, for the error record.
    public let excerpt: String

    public init(_ code: Code, offset: Int, excerpt: String = "") {
        self.code = code
        self.offset = offset
        self.excerpt = excerpt
    }

    public var description: String {
        excerpt.isEmpty ? "\(code.rawValue) at byte \(offset)" : "\(code.rawValue) at byte \(offset) in \(excerpt.debugDescription)"
    }
}

func excerpt(_ bytes: some Collection<UInt8>, limit: Int = 64) -> String {
    let text = String(decoding: bytes.prefix(limit), as: UTF8.self)
    return bytes.count > limit ? text + "…" : text
}
