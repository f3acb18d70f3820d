/// Why bytes are not one MessagePack value.
public struct MsgPackError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// The bytes end inside a value.
        case truncated
        /// 0xc1, which the format never uses.
        case reservedByte = "reserved_byte"
        /// A string that is not UTF-8.
        case invalidUTF8 = "invalid_utf8"
        /// Arrays and maps nested deeper than ``MsgPackCodec/maxDepth``.
        case tooDeep = "too_deep"
        /// Bytes after the value.
        case trailingBytes = "trailing_bytes"
    }

    public var code: Code
    /// Where in the input.
    public var offset: Int

    public init(_ code: Code, offset: Int) {
        self.code = code
        self.offset = offset
    }

    public var description: String {
        switch code {
        case .truncated: "msgpack: the bytes end inside a value (at byte \(offset))"
        case .reservedByte: "msgpack: 0xc1 is never used (at byte \(offset))"
        case .invalidUTF8: "msgpack: a string that is not UTF-8 (at byte \(offset))"
        case .tooDeep: "msgpack: nested deeper than \(MsgPackCodec.maxDepth) (at byte \(offset))"
        case .trailingBytes: "msgpack: bytes after the value (at byte \(offset))"
        }
    }
}

/// MessagePack (https://github.com/msgpack/msgpack/blob/master/spec.md), bytes to values and back.
/// Pure; the Socket.IO msgpack parser's packets are one value each.
public enum MsgPackCodec {
    /// Hostile nesting is an error, not a stack overflow (the JSON parser's limit).
    public static let maxDepth = 512

    /// Exactly one value: bytes after it are an error.
    public static func decode(_ bytes: some Collection<UInt8>) throws(MsgPackError) -> MsgPackValue {
        let array = Array(bytes)
        var reader = Reader(bytes: array)
        let value = try reader.value(depth: 0)
        guard reader.index == array.count else { throw MsgPackError(.trailingBytes, offset: reader.index) }
        return value
    }

    /// The value's shortest encoding (integers in the fewest bytes; as msgpack-python and
    /// notepack.io write them).
    public static func encode(_ value: MsgPackValue) -> [UInt8] {
        var out: [UInt8] = []
        write(value, to: &out)
        return out
    }

    /// Exactly one value, read straight into the capture's JSON form (as ``MsgPackValue/jsonValue``
    /// gives it, without the tree in between).
    public static func decodeJSON(_ bytes: [UInt8]) throws(MsgPackError) -> JSONValue {
        var reader = Reader(bytes: bytes)
        let value = try reader.json(depth: 0)
        guard reader.index == bytes.count else { throw MsgPackError(.trailingBytes, offset: reader.index) }
        return value
    }

    struct Reader {
        let bytes: [UInt8]
        var index = 0

        mutating func take(_ count: Int) throws(MsgPackError) -> ArraySlice<UInt8> {
            guard count >= 0, bytes.count - index >= count else { throw MsgPackError(.truncated, offset: bytes.count) }
            defer { index += count }
            return bytes[index..<(index + count)]
        }

        mutating func unsigned(_ width: Int) throws(MsgPackError) -> UInt64 {
            try take(width).reduce(0) { $0 << 8 | UInt64($1) }
        }

        mutating func value(depth: Int) throws(MsgPackError) -> MsgPackValue {
            let start = index
            let byte = try take(1).first!
            switch byte {
            case 0x00...0x7F: return .uint(UInt64(byte))
            case 0x80...0x8F: return try map(count: Int(byte & 0x0F), depth: depth, at: start)
            case 0x90...0x9F: return try array(count: Int(byte & 0x0F), depth: depth, at: start)
            case 0xA0...0xBF: return try string(count: Int(byte & 0x1F), at: start)
            case 0xC0: return .null
            case 0xC1: throw MsgPackError(.reservedByte, offset: start)
            case 0xC2: return .bool(false)
            case 0xC3: return .bool(true)
            case 0xC4, 0xC5, 0xC6: return .binary(Array(try take(Int(try unsigned(1 << Int(byte - 0xC4))))))
            case 0xC7, 0xC8, 0xC9:
                let count = Int(try unsigned(1 << Int(byte - 0xC7)))
                let type = Int8(bitPattern: try take(1).first!)
                return .ext(type: type, data: Array(try take(count)))
            case 0xCA: return .float32(Float(bitPattern: UInt32(try unsigned(4))))
            case 0xCB: return .float64(Double(bitPattern: try unsigned(8)))
            case 0xCC, 0xCD, 0xCE, 0xCF: return .uint(try unsigned(1 << Int(byte - 0xCC)))
            case 0xD0, 0xD1, 0xD2, 0xD3:
                let width = 1 << Int(byte - 0xD0)
                let raw = try unsigned(width)
                // Sign-extend from the width it was sent in.
                let shift = UInt64(64 - 8 * width)
                let signed = Int64(bitPattern: raw << shift) >> Int64(shift)
                return signed < 0 ? .int(signed) : .uint(UInt64(signed))
            case 0xD4...0xD8:
                let type = Int8(bitPattern: try take(1).first!)
                return .ext(type: type, data: Array(try take(1 << Int(byte - 0xD4))))
            case 0xD9, 0xDA, 0xDB: return try string(count: Int(try unsigned(1 << Int(byte - 0xD9))), at: start)
            case 0xDC, 0xDD: return try array(count: Int(try unsigned(byte == 0xDC ? 2 : 4)), depth: depth, at: start)
            case 0xDE, 0xDF: return try map(count: Int(try unsigned(byte == 0xDE ? 2 : 4)), depth: depth, at: start)
            default: return .int(Int64(Int8(bitPattern: byte)))  // negative fixint, 0xe0...0xff
            }
        }

        /// Whether the next value is notepack's `undefined` (fixext 1, type 0, data 0: how
        /// notepack.io 2, which socket.io-msgpack-parser used, writes it; socket.io sends it for a
        /// CONNECT's `pid` without recovery); it is consumed when it is.
        mutating func skipUndefined() -> Bool {
            guard bytes.count - index >= 3, bytes[index] == 0xD4, bytes[index + 1] == 0, bytes[index + 2] == 0 else { return false }
            index += 3
            return true
        }

        /// The next value as JSON; scalars, strings and containers without the tree in between.
        /// notepack's `undefined` reads as JavaScript reads it: a map's member with it is left
        /// out, and anywhere else it is `null` (as `JSON.stringify` writes it in an array).
        mutating func json(depth: Int) throws(MsgPackError) -> JSONValue {
            let start = index
            guard index < bytes.count else { throw MsgPackError(.truncated, offset: bytes.count) }
            if skipUndefined() { return .null }
            let byte = bytes[index]
            switch byte {
            case 0x00...0x7F:
                index += 1
                return .number(JSONNumber(Int(byte)))
            case 0xA0...0xBF:
                index += 1
                return .string(try jsonString(count: Int(byte & 0x1F), at: start))
            case 0xD9, 0xDA, 0xDB:
                index += 1
                return .string(try jsonString(count: Int(try unsigned(1 << Int(byte - 0xD9))), at: start))
            case 0x90...0x9F, 0xDC, 0xDD:
                index += 1
                let count = byte <= 0x9F ? Int(byte & 0x0F) : Int(try unsigned(byte == 0xDC ? 2 : 4))
                guard depth < MsgPackCodec.maxDepth else { throw MsgPackError(.tooDeep, offset: start) }
                guard count <= bytes.count - index else { throw MsgPackError(.truncated, offset: bytes.count) }
                var items: [JSONValue] = []
                items.reserveCapacity(count)
                for _ in 0..<count { items.append(try json(depth: depth + 1)) }
                return .array(items)
            case 0x80...0x8F, 0xDE, 0xDF:
                index += 1
                let count = byte <= 0x8F ? Int(byte & 0x0F) : Int(try unsigned(byte == 0xDE ? 2 : 4))
                guard depth < MsgPackCodec.maxDepth else { throw MsgPackError(.tooDeep, offset: start) }
                guard count <= (bytes.count - index) / 2 else { throw MsgPackError(.truncated, offset: bytes.count) }
                var members: [JSONObject.Member] = []
                members.reserveCapacity(count)
                for _ in 0..<count {
                    let keyStart = index
                    let key: JSONString
                    if index < bytes.count, case let first = bytes[index], (0xA0...0xBF).contains(first) || (0xD9...0xDB).contains(first) {
                        guard case .string(let text) = try json(depth: depth + 1) else { throw MsgPackError(.truncated, offset: keyStart) }
                        key = text
                    } else {
                        let other = try value(depth: depth + 1)
                        key = JSONString(other.keyText)
                    }
                    if skipUndefined() { continue }
                    members.append(.init(key: key, value: try json(depth: depth + 1)))
                }
                return .object(JSONObject(members))
            default:
                return try value(depth: depth).jsonValue
            }
        }

        /// A msgpack string as a JSON string: bytes that need no escaping are kept as they are.
        mutating func jsonString(count: Int, at start: Int) throws(MsgPackError) -> JSONString {
            guard count >= 0, bytes.count - index >= count else { throw MsgPackError(.truncated, offset: bytes.count) }
            defer { index += count }
            return try bytes.withUnsafeBufferPointer { buffer throws(MsgPackError) -> JSONString in
                let slice = UnsafeBufferPointer(rebasing: buffer[index..<(index + count)])
                var ascii = true
                var plain = true
                for byte in slice {
                    if byte >= 0x80 { ascii = false }
                    if byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { plain = false }
                }
                if !ascii, String(validating: slice, as: UTF8.self) == nil { throw MsgPackError(.invalidUTF8, offset: start) }
                if plain { return JSONString(validatedEscaped: slice, hasEscapes: false) }
                return JSONString(String(decoding: slice, as: UTF8.self))
            }
        }

        mutating func string(count: Int, at start: Int) throws(MsgPackError) -> MsgPackValue {
            let bytes = try take(count)
            guard let text = String(validating: bytes, as: UTF8.self) else { throw MsgPackError(.invalidUTF8, offset: start) }
            return .string(text)
        }

        mutating func array(count: Int, depth: Int, at start: Int) throws(MsgPackError) -> MsgPackValue {
            guard depth < MsgPackCodec.maxDepth else { throw MsgPackError(.tooDeep, offset: start) }
            // Each item takes at least a byte: a count beyond what is left is cut short, not allocated.
            guard count <= bytes.count - index else { throw MsgPackError(.truncated, offset: bytes.count) }
            var items: [MsgPackValue] = []
            items.reserveCapacity(count)
            for _ in 0..<count { items.append(try value(depth: depth + 1)) }
            return .array(items)
        }

        mutating func map(count: Int, depth: Int, at start: Int) throws(MsgPackError) -> MsgPackValue {
            guard depth < MsgPackCodec.maxDepth else { throw MsgPackError(.tooDeep, offset: start) }
            guard count <= (bytes.count - index) / 2 else { throw MsgPackError(.truncated, offset: bytes.count) }
            var entries: [MsgPackValue.Entry] = []
            entries.reserveCapacity(count)
            for _ in 0..<count {
                let key = try value(depth: depth + 1)
                entries.append(.init(key: key, value: try value(depth: depth + 1)))
            }
            return .map(entries)
        }
    }

    static func write(_ value: MsgPackValue, to out: inout [UInt8]) {
        switch value {
        case .null: out.append(0xC0)
        case .bool(let flag): out.append(flag ? 0xC3 : 0xC2)
        case .uint(let number):
            switch number {
            case 0...0x7F: out.append(UInt8(number))
            case 0...0xFF: out += [0xCC, UInt8(number)]
            case 0...0xFFFF: out.append(0xCD); bigEndian(number, width: 2, to: &out)
            case 0...0xFFFF_FFFF: out.append(0xCE); bigEndian(number, width: 4, to: &out)
            default: out.append(0xCF); bigEndian(number, width: 8, to: &out)
            }
        case .int(let number):
            if number >= 0 { return write(.uint(UInt64(number)), to: &out) }
            let bits = UInt64(bitPattern: number)
            switch number {
            case -32...(-1): out.append(UInt8(truncatingIfNeeded: number))
            case -128...(-1): out += [0xD0, UInt8(truncatingIfNeeded: number)]
            case -32768...(-1): out.append(0xD1); bigEndian(bits, width: 2, to: &out)
            case -2_147_483_648...(-1): out.append(0xD2); bigEndian(bits, width: 4, to: &out)
            default: out.append(0xD3); bigEndian(bits, width: 8, to: &out)
            }
        case .float32(let number): out.append(0xCA); bigEndian(UInt64(number.bitPattern), width: 4, to: &out)
        case .float64(let number): out.append(0xCB); bigEndian(number.bitPattern, width: 8, to: &out)
        case .string(let text):
            let bytes = Array(text.utf8)
            header(bytes.count, fix: 0xA0, fixMax: 31, eight: 0xD9, sixteen: 0xDA, thirtyTwo: 0xDB, to: &out)
            out += bytes
        case .binary(let bytes):
            header(bytes.count, fix: nil, fixMax: -1, eight: 0xC4, sixteen: 0xC5, thirtyTwo: 0xC6, to: &out)
            out += bytes
        case .array(let items):
            header(items.count, fix: 0x90, fixMax: 15, eight: nil, sixteen: 0xDC, thirtyTwo: 0xDD, to: &out)
            for item in items { write(item, to: &out) }
        case .map(let entries):
            header(entries.count, fix: 0x80, fixMax: 15, eight: nil, sixteen: 0xDE, thirtyTwo: 0xDF, to: &out)
            for entry in entries {
                write(entry.key, to: &out)
                write(entry.value, to: &out)
            }
        case .ext(let type, let data):
            let fixed: [Int: UInt8] = [1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8]
            if let marker = fixed[data.count] {
                out.append(marker)
            } else {
                header(data.count, fix: nil, fixMax: -1, eight: 0xC7, sixteen: 0xC8, thirtyTwo: 0xC9, to: &out)
            }
            out.append(UInt8(bitPattern: type))
            out += data
        }
    }

    /// A JSON value's msgpack encoding, written straight from it (as
    /// ``JSONValue/msgPackValue`` would give it, without the tree in between).
    public static func write(json value: JSONValue, to out: inout [UInt8]) {
        switch value {
        case .null: out.append(0xC0)
        case .bool(let flag): out.append(flag ? 0xC3 : 0xC2)
        case .number(let number):
            if let integer = number.intValue {
                write(integer < 0 ? .int(Int64(integer)) : .uint(UInt64(integer)), to: &out)
            } else {
                write(JSONValue.number(number).msgPackValue, to: &out)
            }
        case .string(let text): writeString(text, to: &out)
        case .binary(let bytes): write(.binary(bytes), to: &out)
        case .array(let items):
            header(items.count, fix: 0x90, fixMax: 15, eight: nil, sixteen: 0xDC, thirtyTwo: 0xDD, to: &out)
            for item in items { write(json: item, to: &out) }
        case .object(let object):
            header(object.members.count, fix: 0x80, fixMax: 15, eight: nil, sixteen: 0xDE, thirtyTwo: 0xDF, to: &out)
            for member in object.members {
                writeString(member.key, to: &out)
                write(json: member.value, to: &out)
            }
        }
    }

    private static func writeString(_ text: JSONString, to out: inout [UInt8]) {
        guard text.valueIsEscaped else {
            header(text.valueUTF8Count, fix: 0xA0, fixMax: 31, eight: 0xD9, sixteen: 0xDA, thirtyTwo: 0xDB, to: &out)
            text.text.withUTF8 { out.append(contentsOf: $0) }
            return
        }
        var value: [UInt8] = []
        text.text.withUTF8 { JSONString.appendUnescaped($0, to: &value) }
        header(value.count, fix: 0xA0, fixMax: 31, eight: 0xD9, sixteen: 0xDA, thirtyTwo: 0xDB, to: &out)
        out += value
    }

    /// A length in the fewest bytes its type allows (no array literal per call: this runs for
    /// every string and container).
    @inline(__always)
    private static func header(
        _ count: Int, fix: UInt8?, fixMax: Int, eight: UInt8?, sixteen: UInt8, thirtyTwo: UInt8, to out: inout [UInt8]
    ) {
        if let fix, count <= fixMax {
            out.append(fix | UInt8(count))
        } else if let eight, count <= 0xFF {
            out.append(eight)
            out.append(UInt8(count))
        } else if count <= 0xFFFF {
            out.append(sixteen)
            bigEndian(UInt64(count), width: 2, to: &out)
        } else {
            out.append(thirtyTwo)
            bigEndian(UInt64(count), width: 4, to: &out)
        }
    }

    private static func bigEndian(_ value: UInt64, width: Int, to out: inout [UInt8]) {
        for shift in stride(from: 8 * (width - 1), through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }
}
