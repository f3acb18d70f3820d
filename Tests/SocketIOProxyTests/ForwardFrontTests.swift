import NIOCore
import SocketIOTransport
import Testing

@testable import SocketIOProxy

/// Whom forward mode serves.
@Suite("Forward mode: clients")
struct ForwardFrontTests {
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
