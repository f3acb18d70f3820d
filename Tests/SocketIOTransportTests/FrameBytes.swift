import NIOCore
import NIOEmbedded

/// One WebSocket frame's bytes (payloads under 126 bytes), masked when `mask` is given.
func frameBytes(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, mask: [UInt8]? = nil) -> [UInt8] {
    var bytes: [UInt8] = [(fin ? 0x80 : 0) | opcode, UInt8(payload.count) | (mask == nil ? 0 : 0x80)]
    if let mask {
        bytes += mask
        bytes += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
    } else {
        bytes += payload
    }
    return bytes
}

/// Everything written to `channel` so far, as one run of bytes.
func writtenBytes(_ channel: EmbeddedChannel) throws -> [UInt8] {
    var bytes: [UInt8] = []
    while var buffer = try channel.readOutbound(as: ByteBuffer.self) { bytes += buffer.readBytes(length: buffer.readableBytes) ?? [] }
    return bytes
}
