/// Encodes `Encodable` values into a ``JSONValue`` tree, keeping key order as encoded and
/// passing nested ``JSONValue``s through exactly.
public struct JSONValueEncoder: Sendable {
    public init() {}

    public func encode(_ value: some Encodable) throws -> JSONValue {
        let node = Node(codingPath: [])
        try value.encode(to: node)
        return node.result
    }

    /// One value being encoded. A class, because containers hand out references to their slots.
    final class Node: Encoder {
        let codingPath: [any CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }
        private var storage: Storage = .empty

        private enum Storage {
            case empty
            case value(JSONValue)
            case object([(String, Node)])
            case array([Node])
        }

        init(codingPath: [any CodingKey]) { self.codingPath = codingPath }

        var result: JSONValue {
            switch storage {
            case .empty: .object(JSONObject())
            case .value(let value): value
            case .object(let members): .object(JSONObject(members.map { .init(key: JSONString($0.0), value: $0.1.result) }))
            case .array(let items): .array(items.map(\.result))
            }
        }

        func store(_ value: JSONValue) { storage = .value(value) }

        func member(_ key: String, path: any CodingKey) -> Node {
            var members: [(String, Node)] = []
            if case .object(let existing) = storage { members = existing }
            if let found = members.first(where: { $0.0 == key }) { return found.1 }
            let node = Node(codingPath: codingPath + [path])
            members.append((key, node))
            storage = .object(members)
            return node
        }

        func appendElement() -> Node {
            var items: [Node] = []
            if case .array(let existing) = storage { items = existing }
            let node = Node(codingPath: codingPath + [IndexKey(index: items.count)])
            items.append(node)
            storage = .array(items)
            return node
        }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            if case .empty = storage { storage = .object([]) }
            return KeyedEncodingContainer(Keyed<Key>(node: self))
        }

        func unkeyedContainer() -> any UnkeyedEncodingContainer {
            if case .empty = storage { storage = .array([]) }
            return Unkeyed(node: self)
        }

        func singleValueContainer() -> any SingleValueEncodingContainer { Single(node: self) }

        var count: Int {
            if case .array(let items) = storage { return items.count }
            return 0
        }
    }

    struct IndexKey: CodingKey {
        let index: Int
        var stringValue: String { String(index) }
        var intValue: Int? { index }
        init(index: Int) { self.index = index }
        init?(stringValue: String) { nil }
        init?(intValue: Int) { self.index = intValue }
    }

    private struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let node: Node
        var codingPath: [any CodingKey] { node.codingPath }

        mutating func encodeNil(forKey key: Key) throws { node.member(key.stringValue, path: key).store(.null) }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            try encodeValue(value, into: node.member(key.stringValue, path: key))
        }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            node.member(key.stringValue, path: key).container(keyedBy: keyType)
        }
        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            node.member(key.stringValue, path: key).unkeyedContainer()
        }
        mutating func superEncoder() -> any Encoder { node }
        mutating func superEncoder(forKey key: Key) -> any Encoder { node.member(key.stringValue, path: key) }
    }

    private struct Unkeyed: UnkeyedEncodingContainer {
        let node: Node
        var codingPath: [any CodingKey] { node.codingPath }
        var count: Int { node.count }

        mutating func encodeNil() throws { node.appendElement().store(.null) }
        mutating func encode<T: Encodable>(_ value: T) throws { try encodeValue(value, into: node.appendElement()) }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            node.appendElement().container(keyedBy: keyType)
        }
        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer { node.appendElement().unkeyedContainer() }
        mutating func superEncoder() -> any Encoder { node.appendElement() }
    }

    private struct Single: SingleValueEncodingContainer {
        let node: Node
        var codingPath: [any CodingKey] { node.codingPath }

        mutating func encodeNil() throws { node.store(.null) }
        mutating func encode<T: Encodable>(_ value: T) throws { try encodeValue(value, into: node) }
    }
}

/// Scalars become JSON directly; everything else encodes itself into the node.
private func encodeValue<T: Encodable>(_ value: T, into node: JSONValueEncoder.Node) throws {
    switch value {
    case let value as JSONValue: node.store(value)
    case let value as String: node.store(.string(JSONString(value)))
    case let value as Bool: node.store(.bool(value))
    case let value as Int: node.store(.number(JSONNumber(value)))
    case let value as Int64: node.store(.number(JSONNumber(validatedLiteral: String(value))))
    case let value as UInt64: node.store(.number(JSONNumber(value)))
    case let value as UInt32: node.store(.number(JSONNumber(validatedLiteral: String(value))))
    case let value as Int32: node.store(.number(JSONNumber(validatedLiteral: String(value))))
    case let value as UInt8: node.store(.number(JSONNumber(validatedLiteral: String(value))))
    case let value as Double:
        guard let number = JSONNumber(value) else {
            throw EncodingError.invalidValue(value, .init(codingPath: node.codingPath, debugDescription: "JSON has no NaN or infinity"))
        }
        node.store(.number(number))
    default: try value.encode(to: node)
    }
}

/// Decodes `Decodable` values from a ``JSONValue`` tree; nested ``JSONValue``s come out exactly.
public struct JSONValueDecoder: Sendable {
    public init() {}

    public func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        try decodeValue(type, from: Node(value: value, codingPath: []))
    }

    struct Node: Decoder {
        let value: JSONValue
        let codingPath: [any CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func typeMismatch(_ expected: String) -> DecodingError {
            .typeMismatch(Any.self, .init(codingPath: codingPath, debugDescription: "expected \(expected), found \(value.jsonText.prefix(40))"))
        }

        func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
            guard case .object(let object) = value else { throw typeMismatch("an object") }
            return KeyedDecodingContainer(Keyed<Key>(object: object, codingPath: codingPath))
        }

        func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
            guard case .array(let items) = value else { throw typeMismatch("an array") }
            return Unkeyed(items: items, codingPath: codingPath)
        }

        func singleValueContainer() throws -> any SingleValueDecodingContainer { Single(node: self) }
    }

    private struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let object: JSONObject
        let codingPath: [any CodingKey]
        var allKeys: [Key] { object.keys.compactMap { Key(stringValue: $0) } }

        func contains(_ key: Key) -> Bool { object[key.stringValue] != nil }
        func node(_ key: Key) throws -> Node {
            guard let value = object[key.stringValue] else {
                throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "no \"\(key.stringValue)\""))
            }
            return Node(value: value, codingPath: codingPath + [key])
        }
        func decodeNil(forKey key: Key) throws -> Bool { object[key.stringValue] == .null }
        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try decodeValue(type, from: node(key)) }
        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
            try node(key).container(keyedBy: type)
        }
        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer { try node(key).unkeyedContainer() }
        func superDecoder() throws -> any Decoder { Node(value: .object(object), codingPath: codingPath) }
        func superDecoder(forKey key: Key) throws -> any Decoder { try node(key) }
    }

    private struct Unkeyed: UnkeyedDecodingContainer {
        let items: [JSONValue]
        let codingPath: [any CodingKey]
        var currentIndex = 0
        var count: Int? { items.count }
        var isAtEnd: Bool { currentIndex >= items.count }

        init(items: [JSONValue], codingPath: [any CodingKey]) {
            self.items = items
            self.codingPath = codingPath
        }

        mutating func next() throws -> Node {
            guard !isAtEnd else {
                throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath, debugDescription: "array ended"))
            }
            defer { currentIndex += 1 }
            return Node(value: items[currentIndex], codingPath: codingPath + [JSONValueEncoder.IndexKey(index: currentIndex)])
        }
        mutating func decodeNil() throws -> Bool {
            guard !isAtEnd, items[currentIndex] == .null else { return false }
            currentIndex += 1
            return true
        }
        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try decodeValue(type, from: next()) }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
            try next().container(keyedBy: type)
        }
        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { try next().unkeyedContainer() }
        mutating func superDecoder() throws -> any Decoder { try next() }
    }

    private struct Single: SingleValueDecodingContainer {
        let node: Node
        var codingPath: [any CodingKey] { node.codingPath }
        func decodeNil() -> Bool { node.value == .null }
        func decode<T: Decodable>(_ type: T.Type) throws -> T { try decodeValue(type, from: node) }
    }
}

private func decodeValue<T: Decodable>(_ type: T.Type, from node: JSONValueDecoder.Node) throws -> T {
    func number<N>(_ make: (String) -> N?) throws -> N {
        guard case .number(let literal) = node.value, let value = make(literal.literal) else { throw node.typeMismatch("a \(T.self)") }
        return value
    }
    switch type {
    case is JSONValue.Type: return node.value as! T
    case is String.Type:
        guard case .string(let string) = node.value else { throw node.typeMismatch("a string") }
        return string.value as! T
    case is Bool.Type:
        guard case .bool(let bool) = node.value else { throw node.typeMismatch("a boolean") }
        return bool as! T
    case is Int.Type: return try number { Int($0) } as! T
    case is Int64.Type: return try number { Int64($0) } as! T
    case is UInt64.Type: return try number { UInt64($0) } as! T
    case is Int32.Type: return try number { Int32($0) } as! T
    case is UInt32.Type: return try number { UInt32($0) } as! T
    case is UInt8.Type: return try number { UInt8($0) } as! T
    // A literal past Double's range (1e999) is no Double: infinity could not be written back.
    case is Double.Type: return try number { Double($0).flatMap { $0.isFinite ? $0 : nil } } as! T
    default: return try T(from: node)
    }
}
