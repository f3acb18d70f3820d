/// One MessagePack value, as it was encoded: integers keep their sign and width class (beyond
/// 2^53 too), `float32` stays apart from `float64`, binary from strings, map entries keep their
/// order and keys of any type, and extension types are kept as they came.
public enum MsgPackValue: Sendable, Hashable {
    case null
    case bool(Bool)
    /// A negative integer (non-negative ones are `uint`, whatever width they were sent in).
    case int(Int64)
    case uint(UInt64)
    case float32(Float)
    case float64(Double)
    case string(String)
    case binary([UInt8])
    case array([MsgPackValue])
    case map([Entry])
    case ext(type: Int8, data: [UInt8])

    public struct Entry: Sendable, Hashable {
        public var key: MsgPackValue
        public var value: MsgPackValue

        public init(key: MsgPackValue, value: MsgPackValue) {
            self.key = key
            self.value = value
        }
    }

    /// The value of `key` in a map whose keys are strings.
    public subscript(key: String) -> MsgPackValue? {
        guard case .map(let entries) = self else { return nil }
        return entries.first { $0.key == .string(key) }?.value
    }

    /// An integer that fits `Int`.
    public var intValue: Int? {
        switch self {
        case .int(let value): Int(exactly: value)
        case .uint(let value): Int(exactly: value)
        default: nil
        }
    }

    public var stringValue: String? {
        if case .string(let text) = self { text } else { nil }
    }
}
