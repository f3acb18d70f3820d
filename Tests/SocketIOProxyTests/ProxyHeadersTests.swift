import NIOHTTP1
import Testing

@testable import SocketIOProxy

@Suite("Headers across the proxy")
struct ProxyHeadersTests {
    @Test("Hop-by-hop headers and those the Connection header names go, whatever their case; the rest stay in order")
    func endToEnd() {
        let headers: HTTPHeaders = [
            "Host": "app.example", "connection": "Keep-Alive, X-Hop", "x-hop": "1", "KEEP-ALIVE": "timeout=5",
            "Transfer-Encoding": "chunked", "Upgrade": "websocket", "Cookie": "a=1", "X-End": "2",
        ]
        let kept = ProxyHeaders.endToEnd(headers)
        #expect(kept.map(\.name) == ["Host", "Cookie", "X-End"])
    }

    @Test("Upstream: the body's length, no Accept-Encoding on Engine.IO requests, kept alive (no Connection header: HTTP/1.1's default), HTTP/1.1")
    func upstreamHead() {
        let head = HTTPRequestHead(
            version: .http1_0, method: .POST, uri: "/socket.io/?EIO=4&transport=polling&sid=s",
            headers: ["Host": "h:1", "Accept-Encoding": "gzip", "Content-Length": "99", "Connection": "keep-alive"]
        )
        let engine = ProxyHeaders.upstreamHead(head, bodyLength: 5, engineIO: true)
        #expect(engine.version == .http1_1 && engine.uri == head.uri && engine.method == .POST)
        #expect(engine.headers["Content-Length"] == ["5"])
        #expect(engine.headers["Accept-Encoding"].isEmpty)
        #expect(engine.headers["Connection"].isEmpty, "the client's keep-alive is its hop's; the upstream hop is pooled")
        #expect(engine.headers["Host"] == ["h:1"])
        let plain = ProxyHeaders.upstreamHead(head, bodyLength: 5, engineIO: false)
        #expect(plain.headers["Accept-Encoding"] == ["gzip"])
        let get = ProxyHeaders.upstreamHead(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/"), bodyLength: 0, engineIO: false)
        #expect(get.headers["Content-Length"].isEmpty, "a GET without a body gets no length")
    }
}
