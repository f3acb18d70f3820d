import Crypto
public import NIOHTTP1
import SocketIOProtocol
import TransportCore

/// A WebSocket opening handshake as a server judges it (RFC 6455 §4.2). ``HTTPServer`` upgrades
/// any request of a kept-alive connection, not only the first as NIO's typed upgrader does
/// (swift-nio#680), so it reads the handshake itself.
public enum WebSocketUpgrade {
    /// Whether the request asks to switch protocols at all (`Connection: upgrade` and an
    /// `Upgrade` header): NIO's request decoder stops parsing after such a request, so whatever the
    /// answer, the connection cannot carry another HTTP request.
    public static func isUpgradeRequest(_ head: HTTPRequestHead) -> Bool {
        head.headers.contains(name: "Upgrade") && tokens(head.headers, "Connection").contains("upgrade")
    }

    /// The `Sec-WebSocket-Accept` of a valid WebSocket handshake, or `nil` when `head` is not one:
    /// a GET over HTTP/1.1 asking for `websocket`, version 13, with exactly one key.
    public static func accept(_ head: HTTPRequestHead) -> String? {
        guard head.method == .GET, head.version.major > 1 || (head.version.major == 1 && head.version.minor >= 1), isUpgradeRequest(head),
              tokens(head.headers, "Upgrade").contains("websocket"),
              head.headers["Sec-WebSocket-Version"] == ["13"]
        else { return nil }
        let keys = head.headers["Sec-WebSocket-Key"]
        guard keys.count == 1, let key = keys.first?.trimmingWhitespace(), !key.isEmpty else { return nil }
        return acceptValue(forKey: key)
    }

    /// base64(SHA-1(key + the RFC's GUID)).
    public static func acceptValue(forKey key: String) -> String {
        let digest = Insecure.SHA1.hash(data: Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))
        return Base64.encode(Array(digest))
    }

    /// The 101's headers: the upgrade ones, then `extra` (a subprotocol).
    package static func responseHeaders(accept: String, extra: HTTPHeaders) -> HTTPHeaders {
        var headers: HTTPHeaders = ["Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Accept": accept]
        for (name, value) in extra where !["upgrade", "connection", "sec-websocket-accept"].contains(name.lowercased()) {
            headers.add(name: name, value: value)
        }
        return headers
    }

    private static func tokens(_ headers: HTTPHeaders, _ name: String) -> [String] {
        headers[name].flatMap { $0.split(separator: ",") }.map { $0.trimmingWhitespace().lowercased() }
    }
}

private extension StringProtocol {
    func trimmingWhitespace() -> String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}
