extension JSONValue {
    /// Compact JSON text with every number literal and string escape as it was read.
    ///
    /// A ``binary`` value is written as `{"$binary":"<base64>"}`, the capture format's stand-in.
    public var jsonText: String {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        writeUTF8(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the compact text's UTF-8 to `out`: bytes, not `String` pieces, because appending
    /// many small strings costs more than writing the whole text once.
    public func writeUTF8(to out: inout [UInt8]) {
        var standIns: [[UInt8]]? = nil
        write(to: &out, placeholders: &standIns)
    }

    /// Writes as ``writeUTF8(to:)`` does, but each binary value as a Socket.IO placeholder
    /// (`{"_placeholder":true,"num":N}`, numbered depth-first), its bytes appended to `attachments`.
    func writeUTF8(to out: inout [UInt8], placeholdersInto attachments: inout [[UInt8]]) {
        var collected: [[UInt8]]? = attachments
        write(to: &out, placeholders: &collected)
        attachments = collected ?? []
    }

    /// `placeholders`: `nil` writes binary as the capture's `{"$binary":"<base64>"}`.
    private func write(to out: inout [UInt8], placeholders: inout [[UInt8]]?) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let value): out.append(contentsOf: value ? "true".utf8 : "false".utf8)
        case .number(let number): out.appendUTF8(number.text)
        case .string(let string):
            out.append(UInt8(ascii: "\""))
            out.appendUTF8(string.text)
            out.append(UInt8(ascii: "\""))
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for index in items.indices {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                items[index].write(to: &out, placeholders: &placeholders)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let object):
            out.append(UInt8(ascii: "{"))
            let members = object.members
            for index in members.indices {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                out.append(UInt8(ascii: "\""))
                out.appendUTF8(members[index].key.text)
                out.append(UInt8(ascii: "\""))
                out.append(UInt8(ascii: ":"))
                members[index].value.write(to: &out, placeholders: &placeholders)
            }
            out.append(UInt8(ascii: "}"))
        case .binary(let bytes):
            if placeholders != nil {
                out.append(contentsOf: "{\"_placeholder\":true,\"num\":".utf8)
                out.appendDecimal(UInt64(placeholders!.count))
                out.append(UInt8(ascii: "}"))
                placeholders!.append(bytes)
            } else {
                out.append(contentsOf: "{\"$binary\":\"".utf8)
                out.appendUTF8(Base64.encode(bytes))
                out.append(contentsOf: "\"}".utf8)
            }
        }
    }
}

extension JSONValue: CustomStringConvertible {
    public var description: String { jsonText }
}

extension [UInt8] {
    /// Appends a number's decimal digits without making a `String` of it (the codec's ack ids,
    /// the capture writer's numbers).
    public mutating func appendDecimal(_ value: UInt64) {
        guard value >= 10 else {
            append(UInt8(ascii: "0") + UInt8(value))
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 20 digits at most
        var count = 0
        var rest = value
        Swift.withUnsafeMutableBytes(of: &digits) { buffer in
            while rest > 0 {
                buffer[19 - count] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                count += 1
            }
            append(contentsOf: buffer[(20 - count)..<20])
        }
    }

    /// Appends a string's UTF-8 by copying its storage at once (the generic `append(contentsOf:)`
    /// of a `UTF8View` goes byte by byte).
    @inline(__always)
    mutating func appendUTF8(_ text: String) {
        if text.utf8.withContiguousStorageIfAvailable({ append(contentsOf: $0) }) == nil {
            append(contentsOf: text.utf8)
        }
    }
}
