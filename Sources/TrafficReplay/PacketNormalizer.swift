import JWTInspection
public import TrafficCapture

/// Turns a packet into what a replay compares: type, namespace, event and payload, with the
/// values that change on every run replaced by stand-ins (CONNECT sids and pids, tokens by their
/// claims without times) and the user's ignored paths removed.
public struct PacketNormalizer: Sendable {
    /// Paths like `args[0].timestamp`, `data.sid`, `*.id` (any key named id, at any depth).
    public let ignoredPaths: [String]
    /// Connection-state recovery: the server's events (without an ack id) end with their offset,
    /// which differs on every run; it stands in as `<offset>`.
    public var recoveryOffsets: Bool

    public init(ignoredPaths: [String] = [], recoveryOffsets: Bool = false) {
        self.ignoredPaths = ignoredPaths
        self.recoveryOffsets = recoveryOffsets
    }

    /// Whether `packet` is a server event carrying a recovery offset last: an id of up to 64
    /// letters, digits, `-` and `_` (socket.io's are 20 such characters, the built-in server's a
    /// count). Any other last argument is compared: taking every last string for an offset let an
    /// edited "You sent: hello" replay as equal.
    static func hasOffset(_ packet: PacketRecord) -> Bool {
        guard packet.dir == .serverToClient, packet.type.isEvent, packet.id == nil, let last = packet.args?.last?.stringValue else { return false }
        return looksLikeOffset(last)
    }

    static func looksLikeOffset(_ text: String) -> Bool {
        (1...64).contains(text.utf8.count) && text.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }
    }

    /// The key packets are matched on: type, namespace and event name.
    public static func key(_ packet: PacketRecord) -> String {
        "\(packet.type.name.replacingBinaryPrefix) \(packet.nsp) \(packet.event ?? "")"
    }

    public func normalize(_ packet: PacketRecord) -> JSONValue {
        var payload: JSONValue = .null
        if var args = packet.args {
            if recoveryOffsets, Self.hasOffset(packet) { args[args.count - 1] = .string("<offset>") }
            payload = .object(["args": .array(args)])
        }
        if let data = packet.data {
            var value = data
            if packet.type == .connect, case .object(var object) = value {
                // A recovering CONNECT's `offset` changes with every run too.
                for index in object.members.indices where ["sid", "pid", "offset"].contains(object.members[index].key.value) {
                    object.members[index].value = .string("<\(object.members[index].key.value)>")
                }
                value = .object(object)
            }
            payload = .object(["data": value])
        }
        for path in ignoredPaths { payload = Self.removing(path: Self.parse(path), from: payload) }
        return Self.standingInForTokens(payload)
    }

    /// A token echoed by the server is re-minted at every replay (a server that mints one mints it
    /// anew): compare its header and claims, its times as spans from `iat` (its lifetime), not as dates.
    static func standingInForTokens(_ value: JSONValue) -> JSONValue {
        switch value {
        case .string(let string):
            guard JWTText.looksLikeJWT(string.value), let (header, claims) = JWTText.parts(of: string.value),
                let object = claims.objectValue
            else { return value }
            let times = ["exp", "iat", "nbf"]
            var kept = object.members.filter { !times.contains($0.key.value) }
            let issued = object["iat"]?.numberValue?.doubleValue
            for name in ["exp", "nbf"] {
                guard let time = object[name] else { continue }
                let span = issued.flatMap { issued in time.numberValue?.doubleValue.flatMap { JSONNumber($0 - issued) } }
                kept.append(.init(key: JSONString("<\(name) - iat>"), value: span.map(JSONValue.number) ?? .string("<time>")))
            }
            return .string("<jwt \(header.jsonText) \(JSONValue.object(JSONObject(kept)).jsonText)>")
        case .array(let items): return .array(items.map(standingInForTokens))
        case .object(let object):
            return .object(JSONObject(object.members.map { .init(key: $0.key, value: standingInForTokens($0.value)) }))
        default: return value
        }
    }

    enum PathStep: Equatable {
        case key(String)
        case index(Int)
        case anyDepthKey(String)
    }

    static func parse(_ path: String) -> [PathStep] {
        if path.hasPrefix("*.") { return [.anyDepthKey(String(path.dropFirst(2)))] }
        var steps: [PathStep] = []
        for part in path.split(separator: ".") {
            var name = Substring(part)
            var indexes: [Int] = []
            while let open = name.lastIndex(of: "["), name.hasSuffix("]"), let index = Int(name[name.index(after: open)..<name.index(before: name.endIndex)]) {
                indexes.insert(index, at: 0)
                name = name[..<open]
            }
            if !name.isEmpty { steps.append(.key(String(name))) }
            steps += indexes.map { .index($0) }
        }
        return steps
    }

    static func removing(path: [PathStep], from value: JSONValue) -> JSONValue {
        guard let first = path.first else { return .null }
        let rest = Array(path.dropFirst())
        switch (first, value) {
        case (.anyDepthKey(let name), .object(let object)):
            return .object(JSONObject(object.members.filter { $0.key.value != name }.map {
                .init(key: $0.key, value: removing(path: path, from: $0.value))
            }))
        case (.anyDepthKey, .array(let items)):
            return .array(items.map { removing(path: path, from: $0) })
        case (.key(let name), .object(let object)):
            if rest.isEmpty { return .object(JSONObject(object.members.filter { $0.key.value != name })) }
            return .object(JSONObject(object.members.map { member in
                member.key.value == name ? .init(key: member.key, value: removing(path: rest, from: member.value)) : member
            }))
        case (.index(let index), .array(var items)) where items.indices.contains(index):
            if rest.isEmpty { items[index] = .string("<ignored>") } else { items[index] = removing(path: rest, from: items[index]) }
            return .array(items)
        default:
            return value
        }
    }
}

extension String {
    /// BINARY_EVENT and EVENT match each other (a payload may gain or lose binary).
    var replacingBinaryPrefix: String { hasPrefix("BINARY_") ? String(dropFirst(7)) : self }
}
