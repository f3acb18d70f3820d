import NIOCore
import SocketIOTransport
import Testing

@testable import SocketIOProxy

/// Forward mode's reading of request targets (RFC 9110 §7.1, §9.3.6) and whom it serves.
@Suite("Forward mode: request targets and clients")
struct ForwardFrontTests {
    @Test("CONNECT's host:port, IPv6 in brackets; anything else refused")
    func connectAuthority() {
        #expect(ForwardFront.authority("example.com:443")! == ("example.com", 443))
        #expect(ForwardFront.authority("[::1]:8443")! == ("::1", 8443))
        #expect(ForwardFront.authority("127.0.0.1:1")! == ("127.0.0.1", 1))
        for bad in ["example.com", "example.com:", "example.com:0", "example.com:65536", ":443", "::1:443", "a b:80", "user@host:80", "/path:80"] {
            #expect(ForwardFront.authority(bad) == nil, "\(bad)")
        }
        #expect(ForwardFront.authority(host: "::1", port: 80) == "[::1]:80")
        #expect(ForwardFront.authority(host: "example.com", port: 80) == "example.com:80")
    }

    @Test("Absolute URIs: scheme, host, port (the scheme's by default) and the origin-form target")
    func absoluteTargets() {
        typealias Target = ForwardFront.AbsoluteTarget
        #expect(ForwardFront.absoluteTarget("http://example.com/socket.io/?EIO=4") == Target(tls: false, host: "example.com", port: 80, originForm: "/socket.io/?EIO=4"))
        #expect(ForwardFront.absoluteTarget("ws://127.0.0.1:3000/socket.io/?EIO=4&transport=websocket")
            == Target(tls: false, host: "127.0.0.1", port: 3000, originForm: "/socket.io/?EIO=4&transport=websocket"))
        #expect(ForwardFront.absoluteTarget("HTTPS://Example.com?x=1") == Target(tls: true, host: "Example.com", port: 443, originForm: "/?x=1"))
        #expect(ForwardFront.absoluteTarget("wss://[::1]:8443") == Target(tls: true, host: "::1", port: 8443, originForm: "/"))
        for bad in ["/socket.io/?EIO=4", "ftp://example.com/", "http://", "http://user@host/", "http://host:99999/"] {
            #expect(ForwardFront.absoluteTarget(bad) == nil, "\(bad)")
        }
    }

    @Test("Forward mode serves loopback clients only (unless --allow-remote)")
    func loopbackOnly() throws {
        let admits = SocketIOProxy.loopbackOnly.admits
        #expect(admits(try SocketAddress(ipAddress: "127.0.0.1", port: 1)))
        #expect(admits(try SocketAddress(ipAddress: "127.8.9.10", port: 1)))
        #expect(admits(try SocketAddress(ipAddress: "::1", port: 1)))
        #expect(!admits(try SocketAddress(ipAddress: "10.0.0.7", port: 1)))
        #expect(!admits(try SocketAddress(ipAddress: "192.168.1.2", port: 1)))
        #expect(!admits(try SocketAddress(ipAddress: "fe80::1", port: 1)))
        #expect(!admits(nil))
        #expect(ProxyConfiguration(forward: nil).admitsRemoteClients)
    }
}
