import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import SocketIOProtocol

/// A bare Engine.IO 4 long-polling client for driving the server in tests.
struct PollingClient {
    let base: String
    var sid = ""

    init(port: Int, path: String = "/socket.io/") { base = "http://127.0.0.1:\(port)\(path)" }

    /// A minute without an answer is a hang. The whole suite's tests share two threads with the
    /// servers' tasks: a server started while hundreds of tests wait to run can take many seconds
    /// to accept (10 s was sometimes not enough).
    static func request(_ url: String, method: String = "GET", body: [UInt8]? = nil) async throws -> (status: Int, body: [UInt8]) {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        request.timeoutInterval = 60
        if let body { request.httpBody = Data(body) }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, Array(data))
    }

    mutating func open() async throws -> EngineHandshake {
        let (status, body) = try await Self.request(base + "?EIO=4&transport=polling")
        precondition(status == 200, "handshake failed: \(status)")
        let packets = try EngineIOCodec.decodePayload(body, version: .v4)
        let handshake = try EngineHandshake(json: packets[0].text ?? "")
        sid = handshake.sid
        return handshake
    }

    func post(_ texts: [String]) async throws -> Int {
        let body = EngineIOCodec.encodePayload(texts.map { EnginePacket.message($0) }, version: .v4).body
        return try await Self.request(base + "?EIO=4&transport=polling&sid=\(sid)", method: "POST", body: body).status
    }

    func postRaw(_ body: [UInt8]) async throws -> Int {
        try await Self.request(base + "?EIO=4&transport=polling&sid=\(sid)", method: "POST", body: body).status
    }

    /// One poll; the Socket.IO packet texts it carried (pings answered on the way).
    func poll() async throws -> [String] {
        let (status, body) = try await Self.request(base + "?EIO=4&transport=polling&sid=\(sid)")
        guard status == 200 else { return ["HTTP \(status)"] }
        var texts: [String] = []
        for packet in try EngineIOCodec.decodePayload(body, version: .v4) {
            switch packet.type {
            case .message: texts.append(packet.text ?? "")
            case .ping: _ = try await postRaw(Array("3".utf8))
            default: texts.append("engine \(packet.type.name)")
            }
        }
        return texts
    }

    /// Polls until a packet satisfying `match` arrives.
    func next(where match: (String) -> Bool = { _ in true }) async throws -> String {
        for _ in 0..<20 {
            if let found = try await poll().first(where: match) { return found }
        }
        throw CancellationError()
    }
}
