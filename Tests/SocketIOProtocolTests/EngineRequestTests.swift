import SocketIOProtocol
import Testing

@Suite("What a request target says to Engine.IO")
struct EngineRequestTests {
    @Test("Version, transport, sid, b64 and every pair in order, decoded; the path with its trailing slash")
    func parses() throws {
        let request = try EngineRequest(target: "/chat/socket.io?EIO=3&transport=polling&sid=a%2Bb&b64=1&t=N8h%2Fd6w&&flag&name=a+b")
        #expect(request.path == "/chat/socket.io/")
        #expect(request.version == .v3 && request.transport == .polling && request.sid == "a+b" && request.base64)
        #expect(request.query.map { [$0.name, $0.value] } == [
            ["EIO", "3"], ["transport", "polling"], ["sid", "a+b"], ["b64", "1"], ["t", "N8h/d6w"], ["flag", ""], ["name", "a b"],
        ])
        let plain = try EngineRequest(target: "/socket.io/?transport=websocket&EIO=4")
        #expect(plain.path == "/socket.io/" && plain.version == .v4 && plain.transport == .websocket && plain.sid == nil && !plain.base64)
    }

    @Test("Not Engine.IO: no or another version, no or another transport", arguments: [
        "/socket.io/", "/socket.io/?transport=polling", "/socket.io/?EIO=5&transport=polling", "/socket.io/?EIO=4",
        "/socket.io/?EIO=4&transport=webtransport", "/api/status?x=1",
    ])
    func refuses(target: String) {
        #expect(EngineRequest.traffic(target) == nil)
    }

    @Test("Under a path: with or without its trailing slash, the same mount point; any other path is not")
    func underPath() {
        let target = "/socket.io/?EIO=4&transport=polling"
        #expect(EngineRequest.traffic(target, under: "/socket.io") != nil)
        #expect(EngineRequest.traffic(target, under: "/socket.io/") != nil)
        #expect(EngineRequest.traffic("/socket.io?EIO=4&transport=polling", under: "/socket.io") != nil)
        #expect(EngineRequest.traffic(target, under: "/socket.i") == nil)
        #expect(EngineRequest.traffic(target, under: "/socket.io/x") == nil)
        #expect(EngineRequest.traffic(target, under: "/socket.iox") == nil)
        #expect(EngineRequest.traffic("/chat/?EIO=4&transport=polling", under: "/socket.io") == nil)
        #expect(EngineRequest.traffic(target, under: "/") == nil)
        #expect(EngineRequest.traffic("/?EIO=4&transport=polling", under: "/") != nil)
        #expect(EngineRequest.traffic("/?EIO=4&transport=polling", under: "") != nil, "an empty path is the root")
    }
}
