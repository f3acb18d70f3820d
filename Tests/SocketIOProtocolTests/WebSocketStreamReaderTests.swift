import Testing
@testable import SocketIOProtocol

/// A frame as RFC 6455 lays it out; `lengthForm` forces the 16- or 64-bit length even for short
/// payloads (legal on the wire, if not minimal).
private func frame(
    _ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, mask: [UInt8]? = nil, lengthForm: Int? = nil
) -> [UInt8] {
    var bytes: [UInt8] = [(fin ? 0x80 : 0) | opcode]
    let maskBit: UInt8 = mask == nil ? 0 : 0x80
    let form = lengthForm ?? (payload.count < 126 ? 7 : payload.count < 65536 ? 16 : 64)
    switch form {
    case 7: bytes.append(maskBit | UInt8(payload.count))
    case 16: bytes += [maskBit | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
    default: bytes += [maskBit | 127] + (0..<8).reversed().map { UInt8((UInt64(payload.count) >> (UInt64($0) * 8)) & 0xFF) }
    }
    guard let mask else { return bytes + payload }
    return bytes + mask + payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
}

private func read(_ chunks: [[UInt8]], limit: Int = 1 << 20) -> [WebSocketStreamReader.Event] {
    var reader = WebSocketStreamReader(maxMessageSize: limit)
    var events: [WebSocketStreamReader.Event] = []
    for chunk in chunks { reader.read(chunk, into: &events) }
    return events
}

@Suite("Following WebSocket frames in raw bytes")
struct WebSocketStreamReaderTests {
    @Test("Every length form, masked or not, read whole or cut at any byte")
    func lengthForms() {
        let short = Array("42[\"hi\"]".utf8)
        let medium = [UInt8](repeating: 0x61, count: 300)
        let stream = frame(1, short) + frame(1, short, mask: [1, 2, 3, 4]) + frame(2, medium, mask: [9, 8, 7, 6])
            + frame(1, short, lengthForm: 16) + frame(2, short, mask: [0xFF, 0, 0xFF, 0], lengthForm: 64)
        let expected: [WebSocketStreamReader.Event] = [
            .message(.text("42[\"hi\"]")), .message(.text("42[\"hi\"]")), .message(.binary(medium)),
            .message(.text("42[\"hi\"]")), .message(.binary(short)),
        ]
        for chunks in splits(of: stream) {
            #expect(read(chunks) == expected)
        }
    }

    @Test("Fragments join into one message; pings between them are not messages; close frames say their code")
    func fragmentsAndControl() {
        let stream = frame(1, Array("42[\"hel".utf8), fin: false, mask: [1, 1, 1, 1])
            + frame(9, Array("ping".utf8), mask: [2, 2, 2, 2])
            + frame(0, Array("lo\"]".utf8), mask: [3, 3, 3, 3])
            + frame(10, [])
            + frame(8, [0x03, 0xE8, 0x62, 0x79, 0x65])
            + frame(8, [])
        for chunks in splits(of: stream) {
            #expect(read(chunks) == [.message(.text("42[\"hello\"]")), .close(code: 1000), .close(code: nil)])
        }
    }

    @Test("A message over the limit is reported once, by size, and the next one is read")
    func oversized() {
        let whole = frame(2, [UInt8](repeating: 1, count: 11)) + frame(1, Array("ok".utf8))
        #expect(read([whole], limit: 10) == [.oversized(11), .message(.text("ok"))])
        let fragmented = frame(1, Array("123456".utf8), fin: false) + frame(0, Array("789".utf8), fin: false)
            + frame(0, Array("abc".utf8)) + frame(1, Array("next".utf8))
        for chunks in splits(of: fragmented) {
            #expect(read(chunks, limit: 10) == [.oversized(12), .message(.text("next"))])
        }
        #expect(read([frame(1, Array("0123456789".utf8))], limit: 10) == [.message(.text("0123456789"))])
    }

    @Test(
        "Bytes that break the framing are reported once, and nothing after them is read",
        arguments: [
            (frame(3, []), "reserved opcode 3"),
            ([0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0], "frame length with its top bit set"),
            (frame(9, [], fin: false), "fragmented control frame"),
            (frame(8, [UInt8](repeating: 0, count: 126)), "control frame of 126 bytes"),
            (frame(0, Array("x".utf8)), "continuation frame without a message"),
            (frame(1, Array("a".utf8), fin: false) + frame(1, Array("b".utf8)), "new message before the last one's final fragment"),
        ] as [([UInt8], String)]
    )
    func malformed(bytes: [UInt8], reason: String) {
        #expect(read([bytes + frame(1, Array("after".utf8))]) == [.malformed(reason)])
    }

    @Test("Random messages, fragments, masks and chunk sizes read back as sent", arguments: 0..<6)
    func random(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var stream: [UInt8] = []
        var expected: [WebSocketStreamReader.Event] = []
        for _ in 0..<24 {
            let size = [0, 1, 125, 126, 127, 65535, 65536].randomElement(using: &random)! - Int.random(in: 0...1, using: &random)
            let payload = (0..<max(0, size)).map { _ in UInt8.random(in: 0x20...0x7E, using: &random) }
            let mask: [UInt8]? = Bool.random(using: &random) ? (0..<4).map { _ in UInt8.random(in: 0...255, using: &random) } : nil
            let pieces = Int.random(in: 1...3, using: &random)
            let cut = payload.count / pieces
            for piece in 0..<pieces {
                let part = Array(payload[(piece * cut)..<(piece == pieces - 1 ? payload.count : (piece + 1) * cut)])
                stream += frame(piece == 0 ? 2 : 0, part, fin: piece == pieces - 1, mask: mask)
                if Bool.random(using: &random) { stream += frame(9, [1, 2], mask: mask) }
            }
            expected.append(.message(.binary(payload)))
        }
        var chunks: [[UInt8]] = []
        var index = 0
        while index < stream.count {
            let length = min(stream.count - index, Int.random(in: 1...5000, using: &random))
            chunks.append(Array(stream[index..<(index + length)]))
            index += length
        }
        #expect(read(chunks) == expected)
    }
}
