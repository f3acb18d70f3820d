extension MsgPackValue {
    /// The value as the capture shows it: integers as their exact literal (beyond 2^53 too),
    /// `float32` by its shortest form as a float32 (0.1, not 0.10000000149011612), binary as
    /// ``JSONValue/binary(_:)``, a map's keys as strings (a non-string key by its JSON text),
    /// an extension as `{"$ext": {"type": T, "data": "<base64>"}}`, a non-finite float as
    /// `{"$float": "nan"|"inf"|"-inf"}`. notepack's `undefined` (fixext 1, type 0, data 0) as
    /// JavaScript reads it: a map member left out, `null` elsewhere.
    public var jsonValue: JSONValue {
        switch self {
        case .null: return .null
        case .bool(let flag): return .bool(flag)
        case .int(let number): return .number(JSONNumber(validatedLiteral: String(number)))
        case .uint(let number): return .number(JSONNumber(number))
        case .float32(let number):
            guard number.isFinite else { return Self.nonFinite(Double(number)) }
            return .number(JSONNumber(validatedLiteral: number.description))
        case .float64(let number):
            guard number.isFinite else { return Self.nonFinite(number) }
            return .number(JSONNumber(validatedLiteral: number.description))
        case .string(let text): return .string(JSONString(text))
        case .binary(let bytes): return .binary(bytes)
        case .array(let items): return .array(items.map(\.jsonValue))
        case .map(let entries):
            return .object(JSONObject(entries.filter { !$0.value.isUndefined }.map { entry in
                let key = entry.key.keyText
                return .init(key: JSONString(key), value: entry.value.jsonValue)
            }))
        case .ext(let type, let data):
            if isUndefined { return .null }
            return .object(["$ext": .object(["type": .number(JSONNumber(Int(type))), "data": .string(Base64.encode(data))])])
        }
    }

    /// The longest text a key that is no string gets (its JSON, cut there).
    public static let longestKeyText = 256

    /// A map key as a JSON object's key: a string as it is, anything else by its JSON text, at
    /// most ``longestKeyText`` bytes of it. Uncut, maps as keys of maps as keys… had their quotes
    /// escaped again at every level: 144 bytes of msgpack took gigabytes and minutes (fuzzer).
    public var keyText: String {
        if let text = stringValue { return text }
        let text = jsonValue.jsonText
        guard text.utf8.count > Self.longestKeyText else { return text }
        return String(decoding: text.utf8.prefix(Self.longestKeyText), as: UTF8.self) + "…"
    }

    /// notepack.io 2's `undefined`.
    public var isUndefined: Bool {
        if case .ext(0, [0]) = self { true } else { false }
    }

    private static func nonFinite(_ number: Double) -> JSONValue {
        .object(["$float": .string(number.isNaN ? "nan" : number > 0 ? "inf" : "-inf")])
    }
}

extension JSONValue {
    /// The value as a msgpack-python or notepack.io sender would encode it: integer literals as
    /// integers (in the fewest bytes), other numbers as float64, binary as `bin`.
    public var msgPackValue: MsgPackValue {
        switch self {
        case .null: return .null
        case .bool(let flag): return .bool(flag)
        case .number(let number):
            let literal = number.literal
            if number.isInteger {
                if let unsigned = UInt64(literal) { return .uint(unsigned) }
                if let signed = Int64(literal) { return .int(signed) }
            }
            return .float64(Double(literal) ?? .nan)
        case .string(let text): return .string(text.value)
        case .binary(let bytes): return .binary(bytes)
        case .array(let items): return .array(items.map(\.msgPackValue))
        case .object(let object):
            return .map(object.members.map { .init(key: .string($0.key.value), value: $0.value.msgPackValue) })
        }
    }
}

extension JSONValue {
    /// The binary values in the tree, depth first (the order attachments are numbered in).
    public func collectBinaries(into binaries: inout [[UInt8]]) {
        switch self {
        case .binary(let bytes): binaries.append(bytes)
        case .array(let items): for item in items { item.collectBinaries(into: &binaries) }
        case .object(let object): for member in object.members { member.value.collectBinaries(into: &binaries) }
        default: break
        }
    }
}
