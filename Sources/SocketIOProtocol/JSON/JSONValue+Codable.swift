/// `JSONValue` is Codable so that types holding one can be. Through ``JSONValueEncoder`` and
/// ``JSONValueDecoder`` it passes through untouched, literals and all; through another coder
/// (Foundation's `JSONEncoder`, say) numbers travel as `Double` or integers and may be rounded.
extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        if let exact = decoder as? JSONValueDecoder.Node {
            self = exact.value
            return
        }
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let bool = try? container.decode(Bool.self) {
            self = .bool(bool)
        } else if let int = try? container.decode(Int64.self) {
            self = .number(JSONNumber(validatedLiteral: String(int)))
        } else if let double = try? container.decode(Double.self), let number = JSONNumber(double) {
            self = .number(number)
        } else if let string = try? container.decode(String.self) {
            self = .string(JSONString(string))
        } else if let array = try? container.decode([JSONValue].self) {
            self = .array(array)
        } else {
            // Foundation decodes objects into dictionaries: the wire order is lost on this path.
            let dictionary = try container.decode([String: JSONValue].self)
            self = .object(JSONObject(dictionary.sorted { $0.key < $1.key }.map { .init(key: JSONString($0.key), value: $0.value) }))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        if let exact = encoder as? JSONValueEncoder.Node {
            exact.store(self)
            return
        }
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let number):
            if let int = Int64(number.literal) { try container.encode(int) } else { try container.encode(Double(number.literal) ?? 0) }
        case .string(let string): try container.encode(string.value)
        case .array(let items): try container.encode(items)
        case .object(let object):
            try container.encode(Dictionary(object.members.map { ($0.key.value, $0.value) }, uniquingKeysWith: { $1 }))
        case .binary(let bytes): try container.encode(["$binary": Base64.encode(bytes)])
        }
    }
}
