/// A Socket.IO packet that the reference parser would refuse, and why.
///
/// ``message`` is the text socket.io-parser throws for the same input, so reports match what a
/// JavaScript developer sees.
public struct SocketIOError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable, CaseIterable {
        case emptyPacket = "empty packet"
        case unknownPacketType = "unknown packet type"
        case illegalAttachments = "Illegal attachments"
        case tooManyAttachments = "too many attachments"
        case invalidAckID = "invalid ack id"
        case invalidPayload = "invalid payload"
        /// A placeholder whose `num` is not an attachment index.
        case illegalPlaceholder = "illegal attachments"
        case plaintextWhileReconstructing = "got plaintext data when reconstructing a packet"
        case binaryWhileNotReconstructing = "got binary data when not reconstructing a packet"
        /// The msgpack parser's packet is not msgpack at all.
        case invalidMsgPack = "invalid msgpack"
        /// A binary packet's attachments weigh more than the decoder holds (siotap's own limit:
        /// socket.io-parser has none).
        case attachmentsTooLarge = "attachments past the size limit"
    }

    public let code: Code
    /// Character offset into the packet text where the problem was found (0 for binary frames).
    public let offset: Int
    /// The offending packet text, shortened.
    public let excerpt: String
    /// For ``Code/invalidPayload``: the JSON error, when the payload was not JSON at all.
    public let jsonError: JSONParseError?

    public init(_ code: Code, offset: Int = 0, excerpt: String = "", jsonError: JSONParseError? = nil) {
        self.code = code
        self.offset = offset
        self.excerpt = excerpt
        self.jsonError = jsonError
    }

    /// The reference parser's wording (`unknown packet type 9`, `invalid payload`, …).
    public var message: String {
        switch code {
        case .unknownPacketType:
            let digit = excerpt.first.map(String.init) ?? ""
            return "unknown packet type \(digit)"
        default:
            return code.rawValue
        }
    }

    public var description: String {
        var text = message
        if let jsonError { text += " (\(jsonError))" }
        if !excerpt.isEmpty { text += " in \(excerpt.debugDescription)" }
        return text
    }
}
