/// A JSON value that keeps the text it was read from.
///
/// Numbers keep their literal (`12345678901234567890`, `-0.0`, `1e400` stay as written) and strings
/// keep their escaped form (`"\ud83d\ude00"` is written back with the same escapes), so a value read
/// off the wire and written into a capture shows exactly what was sent. Object members keep their order.
///
/// `binary` is not JSON: it stands for a Socket.IO binary attachment in the place of its placeholder.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(JSONString)
    case array([JSONValue])
    case object(JSONObject)
    case binary([UInt8])
}

/// A JSON number, kept as its literal text.
public struct JSONNumber: Sendable, Hashable, CustomStringConvertible {
    let text: UTF8Text

    /// The number exactly as written, validated against the JSON grammar.
    public var literal: String { text.string }

    /// Creates a number from a literal that is known to be valid JSON.
    init(validatedLiteral: String) { text = UTF8Text(validatedLiteral) }

    /// The parser's literal, bytes it has checked against the grammar.
    init(validatedLiteral bytes: UnsafeBufferPointer<UInt8>) { text = UTF8Text(validUTF8: bytes) }

    public init(_ value: Int) { self.init(validatedLiteral: String(value)) }
    public init(_ value: UInt64) { self.init(validatedLiteral: String(value)) }

    /// A double, written the way JavaScript's `JSON.stringify` would write it for integral values
    /// (`3`, not `3.0`); `nil` for NaN and infinities, which JSON cannot hold.
    public init?(_ value: Double) {
        guard value.isFinite else { return nil }
        if value == value.rounded(), abs(value) < 1e15 {
            self.init(validatedLiteral: value == 0 && value.sign == .minus ? "0" : String(Int64(value)))
        } else {
            self.init(validatedLiteral: String(value))
        }
    }

    /// The value as an integer when the literal is one that fits.
    public var intValue: Int? {
        text.withUTF8 { bytes in
            // The literal is valid JSON: an optional minus, then digits, a fraction or an exponent.
            let negative = bytes.first == UInt8(ascii: "-")
            var index = negative ? 1 : 0
            guard index < bytes.count else { return nil }
            var result = 0
            while index < bytes.count {
                let digit = bytes[index] &- UInt8(ascii: "0")
                guard digit < 10 else { return nil }
                let (shifted, overflowShifting) = result.multipliedReportingOverflow(by: 10)
                // Built downwards when negative, so Int.min fits.
                let (next, overflowAdding) = negative
                    ? shifted.subtractingReportingOverflow(Int(digit)) : shifted.addingReportingOverflow(Int(digit))
                guard !overflowShifting, !overflowAdding else { return nil }
                result = next
                index += 1
            }
            return result
        }
    }
    /// The value as a double (possibly rounded: use ``literal`` for the exact text).
    public var doubleValue: Double? { Double(literal) }
    /// True when the literal has no fraction or exponent.
    public var isInteger: Bool { text.withUTF8 { !$0.contains { $0 == UInt8(ascii: ".") || $0 | 0x20 == UInt8(ascii: "e") } } }

    public var description: String { literal }

    // Equal when written the same: `1.0` and `1` are different texts on the wire.
    public static func == (lhs: JSONNumber, rhs: JSONNumber) -> Bool { lhs.text.hasSameBytes(as: rhs.text) }

    public func hash(into hasher: inout Hasher) { text.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) } }
}

/// A JSON string, kept in its escaped wire form.
public struct JSONString: Sendable, Hashable, CustomStringConvertible {
    let text: UTF8Text
    private let hasEscapes: Bool

    /// The characters between the quotes, escapes and all, as they were written.
    public var escaped: String { text.string }

    /// The parser's string: bytes between the quotes it has checked.
    init(validatedEscaped bytes: UnsafeBufferPointer<UInt8>, hasEscapes: Bool) {
        self.text = UTF8Text(validUTF8: bytes)
        self.hasEscapes = hasEscapes
    }

    /// Creates a string from a Swift value, escaped the way `JSON.stringify` escapes.
    public init(_ value: String) {
        let escaped = JSONString.escape(value)
        self.text = UTF8Text(escaped)
        self.hasEscapes = escaped.utf8.count != value.utf8.count || escaped.utf8.contains(UInt8(ascii: "\\"))
    }

    /// The decoded value. A lone surrogate escape becomes U+FFFD here; ``escaped`` still has it.
    public var value: String { hasEscapes ? JSONString.unescape(escaped) : escaped }

    /// True when the decoded value is `other`, without making a `String` when there are no escapes.
    func hasValue(_ other: String) -> Bool { hasEscapes ? value == other : text.hasSameBytes(as: other) }

    func hasValue(_ other: StaticString) -> Bool {
        let bytes = UnsafeBufferPointer(start: other.utf8Start, count: other.utf8CodeUnitCount)
        return hasEscapes ? value == String(decoding: bytes, as: UTF8.self) : text.hasSameBytes(as: bytes)
    }

    /// The decoded value's UTF-8 length; without escapes, known without decoding.
    var valueUTF8Count: Int { hasEscapes ? value.utf8.count : text.utf8Count }

    /// Whether the wire text has escapes (its bytes are then not the value's).
    var valueIsEscaped: Bool { hasEscapes }

    public var description: String { value }

    // Two strings are equal when they decode to the same text, whatever escapes were used.
    public static func == (lhs: JSONString, rhs: JSONString) -> Bool {
        if lhs.text.hasSameBytes(as: rhs.text) { return true }
        // Without escapes on either side, different bytes are different text.
        guard lhs.hasEscapes || rhs.hasEscapes else { return false }
        return lhs.value == rhs.value
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(value) }
}

/// The members of a JSON object, in wire order.
public struct JSONObject: Sendable, Hashable {
    public struct Member: Sendable, Hashable {
        public var key: JSONString
        public var value: JSONValue
        public init(key: JSONString, value: JSONValue) {
            self.key = key
            self.value = value
        }
    }

    public var members: [Member]

    public init(_ members: [Member] = []) { self.members = members }

    /// The value of `key`; with duplicate keys the last one wins, as in `JSON.parse`.
    public subscript(key: String) -> JSONValue? {
        members.last { $0.key.hasValue(key) }?.value
    }

    public var keys: [String] { members.map(\.key.value) }

    /// `self[key]` for a key known when compiling, compared without making a `String`.
    func value(forKey key: StaticString) -> JSONValue? {
        members.last { $0.key.hasValue(key) }?.value
    }
}

extension JSONValue {
    /// Builds an object from Swift pairs, in the order given.
    public static func object(_ pairs: KeyValuePairs<String, JSONValue>) -> JSONValue {
        .object(JSONObject(pairs.map { JSONObject.Member(key: JSONString($0.key), value: $0.value) }))
    }

    public static func string(_ value: String) -> JSONValue { .string(JSONString(value)) }
    public static func number(_ value: Int) -> JSONValue { .number(JSONNumber(value)) }

    public var stringValue: String? {
        if case .string(let s) = self { return s.value }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let o) = self { return o }
        return nil
    }

    public var numberValue: JSONNumber? {
        if case .number(let n) = self { return n }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var isNull: Bool { self == .null }

    /// A string's value, or any other value's JSON text.
    public var scalarText: String { stringValue ?? jsonText }

    /// `value["key"]` on objects; `nil` for anything else.
    public subscript(key: String) -> JSONValue? { objectValue?[key] }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(JSONString(value)) }
    public init(integerLiteral value: Int) { self = .number(JSONNumber(value)) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(nilLiteral: ()) { self = .null }
}
