import SocketIOProtocol

/// Where a rewrite goes in a packet: `args[0].price`, `args[1]["a key"]`, `data.token`, `event`.
/// `args` are an event's arguments after its name, or an ack's; `data` is a CONNECT's or
/// CONNECT_ERROR's payload; `event` is an event's name.
public struct JSONPath: Sendable, Hashable, CustomStringConvertible {
    public enum Root: String, Sendable, Hashable { case args, data, event }
    /// The largest `[N]` a path takes.
    public static let largestIndex = 1_000_000

    public enum Step: Sendable, Hashable {
        case key(String)
        case index(Int)
    }

    public let root: Root
    public let steps: [Step]
    public let description: String

    public init(_ text: String) throws(FaultRule.Invalid) {
        description = text
        var rest = Substring(text)
        let name = rest.prefix { $0.isLetter }
        guard let root = Root(rawValue: String(name)) else {
            throw FaultRule.Invalid("a path starts with args, data or event, not \(text)")
        }
        self.root = root
        rest = rest.dropFirst(name.count)
        var steps: [Step] = []
        while let first = rest.first {
            if first == "." {
                let key = rest.dropFirst().prefix { $0 != "." && $0 != "[" }
                guard !key.isEmpty else { throw FaultRule.Invalid("\(text): an empty key after a dot") }
                steps.append(.key(String(key)))
                rest = rest.dropFirst(1 + key.count)
            } else if first == "[" {
                guard let close = rest.firstIndex(of: "]") else { throw FaultRule.Invalid("\(text): a [ without its ]") }
                let inside = rest[rest.index(after: rest.startIndex)..<close]
                if inside.hasPrefix("\""), inside.hasSuffix("\""), inside.count >= 2 {
                    steps.append(.key(String(inside.dropFirst().dropLast())))
                } else if let index = Int(inside), index >= 0 {
                    // No packet holds more: a larger index is a typo, and would overflow where an
                    // event's name is counted in.
                    guard index <= Self.largestIndex else { throw FaultRule.Invalid("\(text): [\(inside)] is past the largest index, \(Self.largestIndex)") }
                    steps.append(.index(index))
                } else {
                    throw FaultRule.Invalid("\(text): [\(inside)] is neither an index nor a \"key\"")
                }
                rest = rest[rest.index(after: close)...]
            } else {
                throw FaultRule.Invalid("\(text): unexpected \(first)")
            }
        }
        if root == .event, !steps.isEmpty { throw FaultRule.Invalid("\(text): event is a name, it has no parts") }
        if root == .args {
            guard case .index? = steps.first else { throw FaultRule.Invalid("\(text): args is a list: args[0], args[1].key") }
        }
        self.steps = steps
    }

    /// Sets `value` at the path's steps below `target` (an object member is added when missing,
    /// an array item one past the end appended). Returns false when the way there does not exist.
    static func set(_ value: JSONValue, at steps: ArraySlice<Step>, in target: inout JSONValue) -> Bool {
        guard let step = steps.first else {
            target = value
            return true
        }
        switch (step, target) {
        case (.key(let key), .object(var object)):
            target = .null
            defer { target = .object(object) }
            if let index = object.members.firstIndex(where: { $0.key.value == key }) {
                return set(value, at: steps.dropFirst(), in: &object.members[index].value)
            }
            guard steps.count == 1 else { return false }
            object.members.append(.init(key: JSONString(key), value: value))
            return true
        case (.index(let index), .array(var items)):
            target = .null
            defer { target = .array(items) }
            if index < items.count { return set(value, at: steps.dropFirst(), in: &items[index]) }
            guard index == items.count, steps.count == 1 else { return false }
            items.append(value)
            return true
        default:
            return false
        }
    }

    /// Removes what the steps name below `target`; false when it is not there.
    static func unset(at steps: ArraySlice<Step>, in target: inout JSONValue) -> Bool {
        guard let step = steps.first else { return false }
        switch (step, target) {
        case (.key(let key), .object(var object)):
            guard let index = object.members.firstIndex(where: { $0.key.value == key }) else { return false }
            target = .null
            defer { target = .object(object) }
            if steps.count == 1 {
                object.members.remove(at: index)
                return true
            }
            return unset(at: steps.dropFirst(), in: &object.members[index].value)
        case (.index(let index), .array(var items)):
            guard index < items.count else { return false }
            target = .null
            defer { target = .array(items) }
            if steps.count == 1 {
                items.remove(at: index)
                return true
            }
            return unset(at: steps.dropFirst(), in: &items[index])
        default:
            return false
        }
    }
}

extension FaultRule.Edit {
    /// Applies the edit to a packet; false when its path does not exist there.
    func apply(to packet: inout SocketPacket) -> Bool {
        let path: JSONPath
        switch self {
        case .set(let p, _), .unset(let p): path = p
        }
        switch path.root {
        case .event:
            guard packet.type.isEvent, case .array(var items)? = packet.data, !items.isEmpty else { return false }
            guard case .set(_, let value) = self, value.stringValue != nil else { return false }
            items[0] = value
            packet.data = .array(items)
            return true
        case .args:
            guard packet.type.isEvent || packet.type.isAck, case .array(var items)? = packet.data else { return false }
            // An event's arguments follow its name.
            let offset = packet.type.isEvent ? 1 : 0
            guard case .index(let index) = path.steps.first else { return false }
            var steps = path.steps
            steps[0] = .index(index + offset)
            var whole = JSONValue.array(items)
            items = []
            let done: Bool
            switch self {
            case .set(_, let value): done = JSONPath.set(value, at: steps[...], in: &whole)
            case .unset: done = JSONPath.unset(at: steps[...], in: &whole)
            }
            packet.data = whole
            return done
        case .data:
            guard !packet.type.isEvent, !packet.type.isAck else { return false }
            var whole = packet.data ?? .object(JSONObject())
            let done: Bool
            switch self {
            case .set(_, let value): done = JSONPath.set(value, at: path.steps[...], in: &whole)
            case .unset: done = path.steps.isEmpty ? true : JSONPath.unset(at: path.steps[...], in: &whole)
            }
            if done { packet.data = path.steps.isEmpty && { if case .unset = self { true } else { false } }() ? nil : whole }
            return done
        }
    }
}
