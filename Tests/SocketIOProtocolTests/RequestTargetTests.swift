import Testing

@testable import SocketIOProtocol

/// The authority of a CONNECT and absolute URIs (RFC 9110 §7.1, §9.3.6): what forward mode and
/// HAR import read.
@Suite("Request targets")
struct RequestTargetTests {
    @Test("CONNECT's host:port, IPv6 in brackets; anything else refused")
    func connectAuthority() {
        #expect(Authority.parse("example.com:443")! == ("example.com", 443))
        #expect(Authority.parse("[::1]:8443")! == ("::1", 8443))
        #expect(Authority.parse("127.0.0.1:1")! == ("127.0.0.1", 1))
        for bad in ["example.com", "example.com:", "example.com:0", "example.com:65536", ":443", "::1:443", "a b:80", "user@host:80", "/path:80"] {
            #expect(Authority.parse(bad) == nil, "\(bad)")
        }
        #expect(Authority.text(host: "::1", port: 80) == "[::1]:80")
        #expect(Authority.text(host: "example.com", port: 80) == "example.com:80")
    }

    @Test("Absolute URIs: scheme, host, port (the scheme's by default) and the origin-form target")
    func absoluteTargets() {
        typealias Target = AbsoluteURI
        #expect(AbsoluteURI("http://example.com/socket.io/?EIO=4") == Target(tls: false, host: "example.com", port: 80, originForm: "/socket.io/?EIO=4"))
        #expect(AbsoluteURI("ws://127.0.0.1:3000/socket.io/?EIO=4&transport=websocket")
            == Target(tls: false, host: "127.0.0.1", port: 3000, originForm: "/socket.io/?EIO=4&transport=websocket"))
        #expect(AbsoluteURI("HTTPS://Example.com?x=1") == Target(tls: true, host: "Example.com", port: 443, originForm: "/?x=1"))
        #expect(AbsoluteURI("wss://[::1]:8443") == Target(tls: true, host: "::1", port: 8443, originForm: "/"))
        #expect(AbsoluteURI("http://[::1]/x#top") == Target(tls: false, host: "::1", port: 80, originForm: "/x"))
        #expect(AbsoluteURI("wss://example.com:8443/socket.io/?EIO=4&transport=websocket")?.authority == "example.com:8443")
        for bad in ["/socket.io/?EIO=4", "ftp://example.com/", "http://", "http://user@host/", "http://host:99999/", "http://a:b:c/"] {
            #expect(AbsoluteURI(bad) == nil, "\(bad)")
        }
    }
}
