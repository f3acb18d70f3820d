/// Decodes the Socket.IO packets of one direction of one connection, joining each binary packet
/// with the attachments that follow it.
///
/// Feed it the Engine.IO `message` payloads in order: text through ``decode(text:)``, binary
/// through ``decode(binary:)``. Each returns the packet it completes, or `nil` while attachments
/// are still due.
public struct SocketIODecoder: Sendable {
    public let version: SocketIOVersion
    public let maxAttachments: Int
    /// The most the waiting packet's attachments may weigh together; past it the packet is
    /// refused and the rest of its attachments are let by unread.
    public let maxAttachmentBytes: Int

    /// The binary packet waiting for attachments; `expected` is its count, never 0 while it waits
    /// (checking the count is cheaper than looking into an optional packet).
    private var pending: SocketPacket?
    private var expected = 0
    private var buffers: [[UInt8]] = []
    private var bufferedBytes = 0
    /// Attachments still due for a packet refused as too large: they are not decoded.
    private var skipping = 0

    public init(
        version: SocketIOVersion, maxAttachments: Int = SocketIOCodec.defaultMaxAttachments,
        maxAttachmentBytes: Int = SocketIOCodec.defaultMaxAttachmentBytes
    ) {
        self.version = version
        self.maxAttachments = maxAttachments
        self.maxAttachmentBytes = maxAttachmentBytes
    }

    /// True while a binary packet waits for attachments.
    public var isReconstructing: Bool { expected > 0 }

    /// How many attachments the waiting packet still needs.
    public var missingAttachments: Int { expected - buffers.count }

    /// The type of the packet waiting for attachments (`BINARY_EVENT` or `BINARY_ACK`).
    public var waitingType: SocketPacketType? { pending?.type }

    /// Decodes a packet string. Throws, like the reference parser, when a binary packet is still
    /// waiting for attachments; the waiting packet is kept (call ``reset()`` to drop it).
    public mutating func decode(text: String) throws(SocketIOError) -> SocketPacket? {
        // A refused packet's attachments stopped coming: that packet is already reported.
        skipping = 0
        if expected > 0 {
            throw SocketIOError(.plaintextWhileReconstructing, excerpt: String(text.prefix(64)))
        }
        let (packet, count) = try SocketIOCodec.decodeString(text, version: version, maxAttachments: maxAttachments)
        guard packet.type.isBinary else { return packet }
        guard count > 0 else { return try Self.complete(packet, attachments: []) }
        if let data = packet.data { try SocketIOCodec.checkPlaceholders(data, count: count) }
        pending = consume packet
        expected = count
        return nil
    }

    /// Adds a binary attachment to the waiting packet. Throws ``SocketIOError/Code/attachmentsTooLarge``
    /// (once) when it would take the packet's attachments past ``maxAttachmentBytes``; the packet
    /// is dropped, and its attachments still due return nil, unread.
    public mutating func decode(binary: [UInt8]) throws(SocketIOError) -> SocketPacket? {
        if skipping > 0 {
            skipping -= 1
            return nil
        }
        guard expected > 0 else { throw SocketIOError(.binaryWhileNotReconstructing) }
        guard bufferedBytes + binary.count <= maxAttachmentBytes else {
            let due = expected - buffers.count - 1
            reset()
            skipping = due
            throw SocketIOError(.attachmentsTooLarge)
        }
        bufferedBytes += binary.count
        buffers.append(binary)
        guard buffers.count == expected, let packet = pending.take() else { return nil }
        let attachments = buffers
        reset()
        return try Self.complete(consume packet, attachments: attachments)
    }

    /// Drops a half-received binary packet (the reference parser's `destroy()`).
    public mutating func reset() {
        pending = nil
        expected = 0
        buffers = []
        bufferedBytes = 0
    }

    private static func complete(_ packet: consuming SocketPacket, attachments: [[UInt8]]) throws(SocketIOError) -> SocketPacket {
        // In place through the optional: binding its payload to a new variable would hold a
        // second reference to the tree and make the first change copy it.
        if packet.data != nil {
            try SocketIOCodec.reconstruct(&packet.data!, attachments: attachments)
        }
        packet.attachments = attachments
        return packet
    }
}
