/// The data of an Engine.IO `open` packet.
public struct EngineHandshake: Sendable, Hashable {
    public var sid: String
    public var upgrades: [String]
    /// Milliseconds.
    public var pingInterval: Int
    /// Milliseconds.
    public var pingTimeout: Int
    /// Bytes; only Engine.IO 4 servers send it.
    public var maxPayload: Int?

    public init(sid: String, upgrades: [String], pingInterval: Int, pingTimeout: Int, maxPayload: Int? = nil) {
        self.sid = sid
        self.upgrades = upgrades
        self.pingInterval = pingInterval
        self.pingTimeout = pingTimeout
        self.maxPayload = maxPayload
    }

    /// Reads the JSON of an `open` packet; other keys are ignored.
    public init(json text: String) throws(EngineIOError) {
        let value: JSONValue
        do { value = try JSONValue.parse(text) } catch { throw EngineIOError(.invalidHandshake, offset: error.offset, excerpt: text) }
        guard let sid = value["sid"]?.stringValue,
            let upgrades = value["upgrades"]?.arrayValue?.compactMap(\.stringValue),
            let pingInterval = value["pingInterval"]?.numberValue?.intValue,
            let pingTimeout = value["pingTimeout"]?.numberValue?.intValue
        else { throw EngineIOError(.invalidHandshake, offset: 0, excerpt: text) }
        self.init(
            sid: sid, upgrades: upgrades, pingInterval: pingInterval, pingTimeout: pingTimeout,
            maxPayload: value["maxPayload"]?.numberValue?.intValue
        )
    }

    /// The JSON the JS server writes, keys in its order.
    public var json: String {
        var members: [JSONObject.Member] = [
            .init(key: JSONString("sid"), value: .string(sid)),
            .init(key: JSONString("upgrades"), value: .array(upgrades.map { .string($0) })),
            .init(key: JSONString("pingInterval"), value: .number(pingInterval)),
            .init(key: JSONString("pingTimeout"), value: .number(pingTimeout)),
        ]
        if let maxPayload { members.append(.init(key: JSONString("maxPayload"), value: .number(maxPayload))) }
        return JSONValue.object(JSONObject(members)).jsonText
    }
}
