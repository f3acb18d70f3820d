/// Decodes the Socket.IO packets of one direction of one connection, joining each binary packet
/// with the attachments that follow it.
///
/// Feed it the Engine.IO `message` payloads in order: text through ``decode(text:)``, binary
/// through ``decode(binary:)``. Each returns the packet it completes, or `nil` while attachments
/// are still due.
public struct SocketIODecoder: Sendable {
    public let version: SocketIOVersion
    public let maxAttachments: Int

    private var pending: SocketPacket?
    private var pendingCount = 0
    private var buffers: [[UInt8]] = []

    public init(version: SocketIOVersion, maxAttachments: Int = SocketIOCodec.defaultMaxAttachments) {
        self.version = version
        self.maxAttachments = maxAttachments
    }

    /// True while a binary packet waits for attachments.
    public var isReconstructing: Bool { pending != nil }

    /// How many attachments the waiting packet still needs.
    public var missingAttachments: Int { pending == nil ? 0 : pendingCount - buffers.count }

    /// Decodes a packet string. Throws, like the reference parser, when a binary packet is still
    /// waiting for attachments; the waiting packet is kept (call ``reset()`` to drop it).
    public mutating func decode(text: String) throws(SocketIOError) -> SocketPacket? {
        if pending != nil {
            throw SocketIOError(.plaintextWhileReconstructing, excerpt: String(text.prefix(64)))
        }
        let (packet, count) = try SocketIOCodec.decodeString(text, version: version, maxAttachments: maxAttachments)
        guard packet.type.isBinary else { return packet }
        pending = packet
        pendingCount = count
        buffers = []
        return try completeIfReady()
    }

    /// Adds a binary attachment to the waiting packet.
    public mutating func decode(binary: [UInt8]) throws(SocketIOError) -> SocketPacket? {
        guard pending != nil else { throw SocketIOError(.binaryWhileNotReconstructing) }
        buffers.append(binary)
        return try completeIfReady()
    }

    /// Drops a half-received binary packet (the reference parser's `destroy()`).
    public mutating func reset() {
        pending = nil
        pendingCount = 0
        buffers = []
    }

    private mutating func completeIfReady() throws(SocketIOError) -> SocketPacket? {
        guard var packet = pending, buffers.count == pendingCount else { return nil }
        let attachments = buffers
        reset()
        if let data = packet.data {
            packet.data = try SocketIOCodec.reconstruct(data, attachments: attachments)
        }
        packet.attachments = attachments
        return packet
    }
}
