/// HTTP/1.1 framing as a byte relay needs it, and no more: where a head ends, what its start
/// line and the few fields that decide framing and hop-by-hop handling say, and where a body ends
/// (Content-Length, chunked, or the connection's end). Pure: bytes in, values out. Anything this
/// does not take (folded lines, conflicting lengths, a transfer coding other than chunked) is
/// `nil`, and the relay leaves that message to a full HTTP implementation.
public enum HTTPFraming {
    /// Longest head the relay reads; a longer one is left to the HTTP codec (which refuses it).
    public static let maxHeadSize = 16 << 10

    /// The index just past the blank line ending a head in `bytes`, searching from `start`
    /// (where the last search stopped, less three: the end may straddle two reads).
    public static func headEnd(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        var index = max(0, start)
        while index + 3 < bytes.count {
            // Jump to the next LF: heads are mostly field text.
            if bytes[index + 3] != 0x0A {
                index += bytes[index + 3] == 0x0D ? 1 : 4
                continue
            }
            if bytes[index] == 0x0D, bytes[index + 1] == 0x0A, bytes[index + 2] == 0x0D { return index + 4 }
            index += 1
        }
        return nil
    }

    /// One field: where its name and value lie in the head's bytes.
    public struct Field: Sendable, Equatable {
        /// The whole line, without its CRLF.
        public var line: Range<Int>
        public var name: Range<Int>
        /// Without the whitespace around it.
        public var value: Range<Int>
    }

    /// A head's start line's three parts and its fields, as ranges into the bytes parsed.
    public struct Head: Sendable, Equatable {
        public var first: Range<Int>
        public var second: Range<Int>
        /// The rest of the start line (a request's version; a response's reason, maybe empty).
        public var third: Range<Int>
        public var fields: [Field]
        /// Where the fields begin (past the start line's CRLF).
        public var fieldsStart: Int

        /// Parses `bytes[0..<end]`, `end` as ``headEnd(in:from:)`` found it.
        public static func parse(_ bytes: UnsafeRawBufferPointer, end: Int) -> Head? {
            guard let lineEnd = Self.lineEnd(bytes, from: 0, end: end) else { return nil }
            guard let space1 = (0..<lineEnd).first(where: { bytes[$0] == 0x20 }), space1 > 0 else { return nil }
            let rest = (space1 + 1)..<lineEnd
            let space2 = rest.first(where: { bytes[$0] == 0x20 })
            let second = (space1 + 1)..<(space2 ?? lineEnd)
            guard !second.isEmpty else { return nil }
            let third = space2.map { ($0 + 1)..<lineEnd } ?? lineEnd..<lineEnd
            var fields: [Field] = []
            var start = lineEnd + 2
            while start < end - 2 {
                guard let stop = Self.lineEnd(bytes, from: start, end: end) else { return nil }
                // A folded line (obsolete) or a field without a name: not for the relay.
                guard bytes[start] != 0x20, bytes[start] != 0x09, let colon = (start..<stop).first(where: { bytes[$0] == 0x3A }), colon > start else {
                    return nil
                }
                // No whitespace between a name and its colon (RFC 9112 §5.1: a request smuggling vector).
                guard bytes[colon - 1] != 0x20, bytes[colon - 1] != 0x09 else { return nil }
                var valueStart = colon + 1
                var valueEnd = stop
                while valueStart < valueEnd, bytes[valueStart] == 0x20 || bytes[valueStart] == 0x09 { valueStart += 1 }
                while valueEnd > valueStart, bytes[valueEnd - 1] == 0x20 || bytes[valueEnd - 1] == 0x09 { valueEnd -= 1 }
                fields.append(Field(line: start..<stop, name: start..<colon, value: valueStart..<valueEnd))
                start = stop + 2
            }
            return Head(first: 0..<space1, second: second, third: third, fields: fields, fieldsStart: lineEnd + 2)
        }

        /// The CR of the CRLF ending the line that begins at `from`; a bare CR or LF is refused.
        private static func lineEnd(_ bytes: UnsafeRawBufferPointer, from: Int, end: Int) -> Int? {
            var index = from
            while index + 1 < end {
                switch bytes[index] {
                case 0x0D: return bytes[index + 1] == 0x0A ? index : nil
                case 0x0A, 0x00: return nil
                default: index += 1
                }
            }
            return nil
        }
    }

    /// Whether the field's name is `name` (given in lower case), compared without regard to case.
    public static func name(_ bytes: UnsafeRawBufferPointer, _ field: Field, is name: StaticString) -> Bool {
        guard field.name.count == name.utf8CodeUnitCount else { return false }
        let expected = UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
        for (offset, index) in field.name.enumerated() where lower(bytes[index]) != expected[offset] { return false }
        return true
    }

    /// Whether the field's name is one of `names` (given in lower case).
    public static func name(_ bytes: UnsafeRawBufferPointer, _ field: Field, isAnyOf names: [[UInt8]]) -> Bool {
        names.contains { name in
            name.count == field.name.count && zip(field.name, name).allSatisfy { lower(bytes[$0]) == $1 }
        }
    }

    /// The field's value's comma-separated tokens, in lower case (`Connection: keep-alive, Upgrade`).
    public static func tokens(_ bytes: UnsafeRawBufferPointer, _ field: Field) -> [String] {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[field.value]), as: UTF8.self)
            .split(separator: ",").map { $0.trimmingWhitespace().lowercased() }.filter { !$0.isEmpty }
    }

    static func lower(_ byte: UInt8) -> UInt8 { byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte }

    /// Whether the field concerns one connection only (RFC 9110 §7.6.1: Connection, Keep-Alive,
    /// Proxy-Connection, Proxy-Authenticate, Proxy-Authorization, TE, Trailer, Transfer-Encoding,
    /// Upgrade), compared byte by byte: no string is made.
    public static func isHopByHop(_ bytes: UnsafeRawBufferPointer, _ field: Field) -> Bool {
        switch field.name.count {
        case 2: name(bytes, field, is: "te")
        case 7: name(bytes, field, is: "trailer") || name(bytes, field, is: "upgrade")
        case 10: name(bytes, field, is: "connection") || name(bytes, field, is: "keep-alive")
        case 16: name(bytes, field, is: "proxy-connection")
        case 17: name(bytes, field, is: "transfer-encoding")
        case 18: name(bytes, field, is: "proxy-authenticate")
        case 19: name(bytes, field, is: "proxy-authorization")
        default: false
        }
    }

    /// The value of a Content-Length field: digits only, at most 15 of them.
    public static func contentLength(_ bytes: UnsafeRawBufferPointer, _ field: Field) -> Int? {
        guard !field.value.isEmpty, field.value.count <= 15 else { return nil }
        var value = 0
        for index in field.value {
            let byte = bytes[index]
            guard byte >= 0x30, byte <= 0x39 else { return nil }
            value = value * 10 + Int(byte - 0x30)
        }
        return value
    }

    /// How a message's body ends.
    public enum Body: Sendable, Equatable {
        case length(Int)
        case chunked
        /// A response without a length: when the server closes.
        case untilClose
    }

    /// A chunked body followed through its bytes: which of them are data, and where it ends
    /// (after the last chunk and the trailer). Sizes are bounded (15 hex digits).
    public struct ChunkedReader: Sendable, Equatable {
        enum State: Sendable, Equatable {
            case size(Int, digits: Int)
            case sizeExtension(Int)
            case sizeLF(Int)
            case data(Int)
            case dataCR
            case dataLF
            case trailerLineStart
            case trailerLine
            case trailerLF(last: Bool)
            case done
        }

        public enum Failure: Error, Sendable, Equatable {
            case malformed(String)
        }

        var state = State.size(0, digits: 0)

        public init() {}

        public var isDone: Bool { state == .done }

        /// Reads on through `bytes`; `data` gets each run of chunk data (ranges into `bytes`).
        /// Returns how many bytes belong to the body: fewer than all of them when it ends inside.
        public mutating func read(_ bytes: UnsafeRawBufferPointer, data: (Range<Int>) -> Void) throws(Failure) -> Int {
            var index = 0
            while index < bytes.count {
                let byte = bytes[index]
                switch state {
                case .size(let size, let digits):
                    if let digit = Self.hex(byte) {
                        guard digits < 15 else { throw .malformed("a chunk size of more than 15 digits") }
                        state = .size(size << 4 | digit, digits: digits + 1)
                    } else if digits > 0, byte == 0x3B || byte == 0x20 || byte == 0x09 {
                        state = .sizeExtension(size)
                    } else if digits > 0, byte == 0x0D {
                        state = .sizeLF(size)
                    } else {
                        throw .malformed("a chunk size that is not hexadecimal")
                    }
                case .sizeExtension(let size):
                    if byte == 0x0D { state = .sizeLF(size) } else if byte == 0x0A { throw .malformed("a bare LF in a chunk's size line") }
                case .sizeLF(let size):
                    guard byte == 0x0A else { throw .malformed("a chunk's size line without its LF") }
                    state = size == 0 ? .trailerLineStart : .data(size)
                case .data(let remaining):
                    let run = min(remaining, bytes.count - index)
                    data(index..<(index + run))
                    index += run
                    state = run == remaining ? .dataCR : .data(remaining - run)
                    continue
                case .dataCR:
                    guard byte == 0x0D else { throw .malformed("a chunk longer than its size") }
                    state = .dataLF
                case .dataLF:
                    guard byte == 0x0A else { throw .malformed("a chunk's data without its CRLF") }
                    state = .size(0, digits: 0)
                case .trailerLineStart:
                    state = byte == 0x0D ? .trailerLF(last: true) : .trailerLine
                case .trailerLine:
                    if byte == 0x0D { state = .trailerLF(last: false) }
                case .trailerLF(let last):
                    guard byte == 0x0A else { throw .malformed("a trailer line without its LF") }
                    state = last ? .done : .trailerLineStart
                    if last { return index + 1 }
                case .done:
                    return index
                }
                index += 1
            }
            return index
        }

        static func hex(_ byte: UInt8) -> Int? {
            switch byte {
            case 0x30...0x39: Int(byte - 0x30)
            case 0x41...0x46: Int(byte - 0x41 + 10)
            case 0x61...0x66: Int(byte - 0x61 + 10)
            default: nil
            }
        }
    }
}

extension Substring {
    func trimmingWhitespace() -> Substring {
        var text = self
        while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" { text.removeLast() }
        return text
    }
}
