extension JSONValue {
    /// Compact JSON text with every number literal and string escape as it was read.
    ///
    /// A ``binary`` value is written as `{"$binary":"<base64>"}`, the capture format's stand-in.
    public var jsonText: String {
        var out = ""
        write(to: &out)
        return out
    }

    /// Appends the compact text to `out`, avoiding a string per nested value.
    public func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let value): out += value ? "true" : "false"
        case .number(let number): out += number.literal
        case .string(let string):
            out += "\""
            out += string.escaped
            out += "\""
        case .array(let items):
            out += "["
            for (offset, item) in items.enumerated() {
                if offset > 0 { out += "," }
                item.write(to: &out)
            }
            out += "]"
        case .object(let object):
            out += "{"
            for (offset, member) in object.members.enumerated() {
                if offset > 0 { out += "," }
                out += "\""
                out += member.key.escaped
                out += "\":"
                member.value.write(to: &out)
            }
            out += "}"
        case .binary(let bytes):
            out += "{\"$binary\":\""
            out += Base64.encode(bytes)
            out += "\"}"
        }
    }
}

extension JSONValue: CustomStringConvertible {
    public var description: String { jsonText }
}
