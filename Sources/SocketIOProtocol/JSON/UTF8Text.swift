/// Text known to be valid UTF-8, as the parser found it: up to 15 bytes inline, longer as a `String`.
///
/// Most keys, short strings and number literals in Socket.IO traffic are a few bytes long. Making
/// a `String` of each re-validates its UTF-8 and costs about a third of parsing a packet; packing
/// the bytes into two words costs a few instructions a byte, and writing them back out needs no
/// `String` at all. A `String` is made only when someone asks for one.
struct UTF8Text: Sendable {
    private enum Storage: Sendable {
        /// Bytes in little-endian order across the two words; the count in the top byte of `high`.
        case inline(low: UInt64, high: UInt64)
        case string(String)
    }

    private static let inlineCapacity = 15

    private let storage: Storage

    init(_ string: String) { storage = .string(string) }

    /// `bytes` must be valid UTF-8; it is not checked again.
    init(validUTF8 bytes: UnsafeBufferPointer<UInt8>) {
        guard bytes.count <= Self.inlineCapacity else {
            storage = .string(String(decoding: bytes, as: UTF8.self))
            return
        }
        var low: UInt64 = 0
        var high = UInt64(bytes.count) << 56
        for index in 0..<min(bytes.count, 8) { low |= UInt64(bytes[index]) << (index &* 8) }
        if bytes.count > 8 {
            for index in 8..<bytes.count { high |= UInt64(bytes[index]) << ((index &- 8) &* 8) }
        }
        storage = .inline(low: low, high: high)
    }

    var string: String {
        switch storage {
        case .string(let string): string
        case .inline: withUTF8 { String(decoding: $0, as: UTF8.self) }
        }
    }

    var utf8Count: Int {
        switch storage {
        case .string(let string): string.utf8.count
        case .inline(_, let high): Int(high >> 56)
        }
    }

    func withUTF8<Result>(_ body: (UnsafeBufferPointer<UInt8>) throws -> Result) rethrows -> Result {
        switch storage {
        case .string(var string):
            return try string.withUTF8(body)
        case .inline(let low, let high):
            let words = (low.littleEndian, (high & 0x00FF_FFFF_FFFF_FFFF).littleEndian)
            return try withUnsafeBytes(of: words) { raw in
                try body(UnsafeBufferPointer(start: raw.baseAddress!.assumingMemoryBound(to: UInt8.self), count: Int(high >> 56)))
            }
        }
    }

    func hasSameBytes(as other: UTF8Text) -> Bool {
        if case .inline(let low, let high) = storage, case .inline(let otherLow, let otherHigh) = other.storage {
            return low == otherLow && high == otherHigh
        }
        guard utf8Count == other.utf8Count else { return false }
        return withUTF8 { mine in other.withUTF8 { theirs in Self.equal(mine, theirs) } }
    }

    func hasSameBytes(as text: String) -> Bool {
        guard utf8Count == text.utf8.count else { return false }
        var text = text
        return text.withUTF8 { hasSameBytes(as: $0) }
    }

    func hasSameBytes(as bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard utf8Count == bytes.count else { return false }
        return withUTF8 { Self.equal($0, bytes) }
    }

    /// Buffers of the same length; a plain loop (`elementsEqual` goes through iterators).
    private static func equal(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        for index in 0..<a.count where a[index] != b[index] { return false }
        return true
    }
}

extension [UInt8] {
    @inline(__always)
    mutating func appendUTF8(_ text: UTF8Text) {
        text.withUTF8 { append(contentsOf: $0) }
    }
}
