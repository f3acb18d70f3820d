import Foundation
import SocketIOProtocol
import SocketIOServer
import Testing

private func makeServer(_ configure: (SocketIOServer) -> Void, engine: EngineConfiguration = EngineConfiguration(pingInterval: 500, pingTimeout: 500)) async throws -> (SocketIOServer, Int) {
    let io = SocketIOServer(configuration: .init(engine: engine, ackTimeout: 500))
    configure(io)
    let port = try await io.start(port: 0)
    return (io, port)
}

private func waitUntil(_ condition: () -> Bool) async -> Bool {
    for _ in 0..<200 {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

@Suite("The Swift server API", .serialized)
struct SocketIOServerTests {
    @Test("A middleware refuses with a message and data; the next connection passes")
    func middlewareRefusal() async throws {
        let (io, port) = try await makeServer { io in
            io.use { socket in
                guard socket.handshake.auth["token"]?.stringValue == "good" else {
                    throw ConnectionRefused("not allowed", data: .object(["retry": false]))
                }
            }
        }
        defer { Task { await io.shutdown() } }
        var client = PollingClient(port: port)
        _ = try await client.open()
        #expect(try await client.post([#"0{"token":"bad"}"#]) == 200)
        #expect(try await client.next() == #"4{"message":"not allowed","data":{"retry":false}}"#)
        #expect(try await client.post([#"0{"token":"good"}"#]) == 200)
        #expect(try await client.next().hasPrefix(#"0{"sid":""#))
    }

    @Test("emitWithAck gets the client's answer, and times out without one")
    func serverAcks() async throws {
        let replies = Mutexed<[String]>([])
        let (io, port) = try await makeServer { io in
            io.on(.connection) { socket in
                socket.on("ask") { _, _ in
                    do {
                        let answer = try await socket.emitWithAck("question", ["life"], timeout: 1_000)
                        replies.append(JSONValue.array(answer).jsonText)
                    } catch {
                        replies.append("\(error)")
                    }
                }
            }
        }
        defer { Task { await io.shutdown() } }
        var client = PollingClient(port: port)
        _ = try await client.open()
        _ = try await client.post(["0"])
        _ = try await client.next()
        _ = try await client.post([#"2["ask"]"#])
        let question = try await client.next { $0.hasPrefix("2") }
        #expect(question == #"20["question","life"]"#)
        _ = try await client.post([#"30[42,"x"]"#])
        #expect(await waitUntil { replies.value == [#"[42,"x"]"#] })
        // Asked again and never answered: the handler gets the timeout, and a late answer is ignored.
        _ = try await client.post([#"2["ask"]"#])
        #expect(try await client.next { $0.hasPrefix("2") } == #"21["question","life"]"#)
        #expect(await waitUntil { replies.value.count == 2 })
        #expect(replies.value.last == "operation has timed out")
        _ = try await client.post([#"31["late"]"#])
        try await Task.sleep(for: .milliseconds(100))
        #expect(replies.value.count == 2)
    }

    @Test("Rooms: to, except and broadcast reach the right sockets")
    func rooms() async throws {
        let (io, port) = try await makeServer { io in
            io.on(.connection) { socket in
                let room = socket.handshake.auth["room"]?.stringValue ?? "none"
                socket.join(room)
                socket.on("shout") { _, _ in
                    await io.to("red").except("blue").emit("to-red")
                    await socket.broadcast.emit("from-other")
                }
            }
        }
        defer { Task { await io.shutdown() } }
        var red = PollingClient(port: port), blue = PollingClient(port: port)
        _ = try await red.open()
        _ = try await blue.open()
        _ = try await red.post([#"0{"room":"red"}"#])
        _ = try await blue.post([#"0{"room":"blue"}"#])
        _ = try await red.next()
        _ = try await blue.next()
        _ = try await red.post([#"2["shout"]"#])
        #expect(try await red.next { $0.hasPrefix("2") } == #"2["to-red"]"#)
        #expect(try await blue.next { $0.hasPrefix("2") } == #"2["from-other"]"#)
    }

    @Test("Sessions end and are forgotten: client close, ping timeout, shutdown")
    func noLeaks() async throws {
        let (io, port) = try await makeServer { _ in }
        var closing = PollingClient(port: port)
        _ = try await closing.open()
        var silent = PollingClient(port: port)
        _ = try await silent.open()
        #expect(io.sessionCount == 2)
        _ = try await closing.postRaw(Array("1".utf8))
        #expect(await waitUntil { io.sessionCount == 1 })
        // The silent one never answers a ping: gone after interval + timeout.
        #expect(await waitUntil { io.sessionCount == 0 })
        #expect(try await PollingClient.request(closing.base + "?EIO=4&transport=polling&sid=\(closing.sid)").status == 400)
        var late = PollingClient(port: port)
        _ = try await late.open()
        await io.shutdown()
        #expect(io.sessionCount == 0)
        await #expect(throws: (any Error).self) { _ = try await PollingClient.request(late.base + "?EIO=4&transport=polling") }
    }

    @Test("Bad input gets the documented answer and the server carries on")
    func badInput() async throws {
        let (io, port) = try await makeServer({ _ in }, engine: EngineConfiguration(pingInterval: 5_000, pingTimeout: 5_000, maxPayload: 1_000))
        defer { Task { await io.shutdown() } }
        let base = "http://127.0.0.1:\(port)/socket.io/"
        func body(_ result: (status: Int, body: [UInt8])) -> String { String(decoding: result.body, as: UTF8.self) }
        #expect(body(try await PollingClient.request(base + "?EIO=4&transport=polling&sid=nope")) == #"{"code":1,"message":"Session ID unknown"}"#)
        #expect(body(try await PollingClient.request(base + "?EIO=4&transport=polling", method: "PUT")) == #"{"code":2,"message":"Bad handshake method"}"#)
        #expect(try await PollingClient.request("http://127.0.0.1:\(port)/elsewhere").status == 404)
        var client = PollingClient(port: port)
        _ = try await client.open()
        #expect(try await client.postRaw([UInt8](repeating: UInt8(ascii: "4"), count: 5_000)) == 413)
        #expect(try await client.postRaw(Array("x".utf8)) == 400)  // parse error: the session closes
        #expect(await waitUntil { io.sessionCount == 0 })
        var other = PollingClient(port: port)
        _ = try await other.open()
        _ = try await other.post(["0"])
        #expect(try await other.next().hasPrefix("0{"))
    }
}

/// A value behind a lock, for handlers to report into.
final class Mutexed<Value: Sendable>: @unchecked Sendable {
    // Safe: every access goes through the lock.
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value { lock.withLock { stored } }
    func append<Element>(_ element: Element) where Value == [Element] { lock.withLock { stored.append(element) } }
}

@Suite("Server-side disconnects", .serialized)
struct ServerDisconnectTests {
    @Test("socket.disconnect() sends DISCONNECT and keeps the session; closeConnection ends it")
    func disconnect() async throws {
        let reasons = Mutexed<[String]>([])
        let (io, port) = try await makeServer { io in
            io.on(.connection) { socket in
                socket.onDisconnect { reason in reasons.append(reason) }
                socket.on("leave") { _, _ in await socket.disconnect() }
                socket.on("quit") { _, _ in await socket.disconnect(closeConnection: true) }
            }
        }
        defer { Task { await io.shutdown() } }
        var client = PollingClient(port: port)
        _ = try await client.open()
        _ = try await client.post(["0"])
        _ = try await client.next()
        _ = try await client.post([#"2["leave"]"#])
        #expect(try await client.next() == "1")
        #expect(reasons.value == ["server namespace disconnect"])
        #expect(io.sessionCount == 1)
        _ = try await client.post(["0"])
        _ = try await client.next()
        _ = try await client.post([#"2["quit"]"#])
        #expect(await waitUntil { io.sessionCount == 0 })
        #expect(reasons.value.count == 2)
    }
}
