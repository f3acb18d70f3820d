import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOSSL
import TLSCertificates
import Testing

@testable import HTTPClientTransport
@testable import SocketIOTransport
@testable import TransportCore
@testable import TransportTLS
@testable import WebSocketTransport

/// Forward mode's tunnels at the pipeline level: the 200 to a CONNECT, what the client sends
/// right behind it, and the TLS details siotap reads off its own handshake.
@Suite("CONNECT tunnels")
struct TunnelTests {
    struct Inner: HTTPServerDelegate {
        func handle(_ request: HTTPRequest) async -> HTTPResponse { HTTPResponse(status: .ok) }
        func shouldUpgrade(_ head: HTTPRequestHead) async -> HTTPHeaders? { nil }
        func handleWebSocket(_ connection: WebSocketConnection, head: HTTPRequestHead) async {}
    }

    static func interception(unreadable: @escaping @Sendable (String, String) -> Void = { _, _ in }) -> TunnelInterception {
        TunnelInterception(
            certificates: TLSInterception { _ in throw CancellationError() }, defaultName: "example.com", delegate: Inner(),
            established: { _ in }, handshakeFailed: { _, _ in }, unreadable: unreadable
        )
    }

    func written(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) { text += buffer.readString(length: buffer.readableBytes) ?? "" }
        return text
    }

    @Test("A CONNECT and the plain request sent in the same segment behind it: 200, then the request, as HTTP again")
    func plainHTTPInsideATunnel() throws {
        let channel = EmbeddedChannel()
        try ConnectionPhase.configureHTTP(channel.pipeline.syncOperations)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(ByteBuffer(string: "CONNECT example.com:80 HTTP/1.1\r\nHost: example.com:80\r\n\r\nGET /inside?EIO=4 HTTP/1.1\r\nHost: example.com\r\n\r\n"))
        guard case .http(.head(let connect)) = try channel.readInbound(as: ConnectionPhase.Inbound.self) else {
            Issue.record("no CONNECT head")
            return
        }
        #expect(connect.method == .CONNECT && connect.uri == "example.com:80")
        while try channel.readInbound(as: ConnectionPhase.Inbound.self) != nil {}
        let interception = Self.interception()
        try ConnectionPhase.switchToTunnel(channel.pipeline.syncOperations) { position in
            try channel.pipeline.syncOperations.addHandler(TunnelProtocolDetector(interception), position: position)
        }
        channel.embeddedEventLoop.run()
        #expect(try written(channel) == "HTTP/1.1 200 Connection established\r\n\r\n")
        var heads: [HTTPRequestHead] = []
        while let part = try channel.readInbound(as: ConnectionPhase.Inbound.self) {
            if case .http(.head(let head)) = part { heads.append(head) }
        }
        #expect(heads.map(\.uri) == ["/inside?EIO=4"])
        #expect(heads.first?.headers["Host"] == ["example.com"])
    }

    @Test("Bytes that are neither TLS nor HTTP: told, answered 400, closed")
    func garbage() throws {
        let channel = EmbeddedChannel()
        try ConnectionPhase.configureHTTP(channel.pipeline.syncOperations)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(ByteBuffer(string: "CONNECT example.com:443 HTTP/1.1\r\n\r\n"))
        while try channel.readInbound(as: ConnectionPhase.Inbound.self) != nil {}
        let told = NIOLockedValueBox<[String]>([])
        let interception = Self.interception { _, reason in told.withLockedValue { $0.append(reason) } }
        try ConnectionPhase.switchToTunnel(channel.pipeline.syncOperations) { position in
            try channel.pipeline.syncOperations.addHandler(TunnelProtocolDetector(interception), position: position)
        }
        channel.embeddedEventLoop.run()
        _ = try written(channel)
        try channel.writeInbound(ByteBuffer(bytes: [0, 1, 2, 0xFF]))
        channel.embeddedEventLoop.run()
        #expect(try written(channel).hasPrefix("HTTP/1.1 400 Bad Request"))
        #expect(told.withLockedValue { $0 } == ["neither TLS nor HTTP came through the tunnel (first bytes: 0 1 2 ff)"])
        #expect(!channel.isActive)
    }

    @Test("The cipher suite siotap chose, read off its ServerHello, for TLS 1.2 and 1.3", arguments: [
        (TLSVersion.tlsv12, NIOTLSCipher.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
        (TLSVersion.tlsv13, nil, "TLS_AES_128_GCM_SHA256"),
    ])
    func cipherFromTheServerHello(version: TLSVersion, only: NIOTLSCipher?, expected: String) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("siotap-tunnel-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ca = try LocalCA.create(in: directory, hostName: "test")
        let identity = try ca.mintLeaf(for: ["example.com"])
        var serverConfiguration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try identity.certificateChainPEM.flatMap { try NIOSSLCertificate.fromPEMBytes(Array($0.utf8)) }.map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(identity.privateKeyPEM.utf8), format: .pem))
        )
        serverConfiguration.minimumTLSVersion = version
        serverConfiguration.maximumTLSVersion = version
        if let only { serverConfiguration.cipherSuiteValues = [only] }
        var clientConfiguration = TLSConfiguration.makeClientConfiguration()
        clientConfiguration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(try ca.certificatePEM().utf8)))
        // The client offers AES-128 first for TLS 1.3; the server follows the client's order there.
        clientConfiguration.cipherSuiteValues = [.TLS_AES_128_GCM_SHA256, .TLS_AES_256_GCM_SHA384, .TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]

        let server = EmbeddedChannel()
        let sniffer = ServerHelloSniffer()
        let serverTLS = NIOSSLServerHandler(context: try NIOSSLContext(configuration: serverConfiguration))
        try server.pipeline.syncOperations.addHandler(sniffer)
        try server.pipeline.syncOperations.addHandler(serverTLS)
        let client = EmbeddedChannel()
        try client.pipeline.syncOperations.addHandler(
            try NIOSSLClientHandler(context: try NIOSSLContext(configuration: clientConfiguration), serverHostname: "example.com")
        )
        try server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
        // Shuttle bytes until both sides are quiet.
        for _ in 0..<10 {
            var moved = false
            while let bytes = try client.readOutbound(as: ByteBuffer.self) { try server.writeInbound(bytes); moved = true }
            while let bytes = try server.readOutbound(as: ByteBuffer.self) { try client.writeInbound(bytes); moved = true }
            if !moved { break }
        }
        #expect(TLSHandshakeDetails.versionName(serverTLS.tlsVersion) == (version == .tlsv13 ? "TLSv1.3" : "TLSv1.2"))
        let suite = try #require(sniffer.cipherSuite)
        #expect(ServerHelloSniffer.name(ofCipherSuite: suite) == expected)
        if let only { #expect(suite == only.rawValue) }
        // Not finished: closing waits for the peer's close_notify, which nothing would shuttle.
    }

    @Test("Minted certificates are kept for the names used last only: 200 names through a cache of 16 hold 16, and a name in use is not minted again")
    func mintedCertificatesAreBounded() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("siotap-tunnel-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ca = try LocalCA.create(in: directory, hostName: "test")
        let minted = NIOLockedValueBox(0)
        let certificates = TLSInterception(capacity: 16) { name in
            minted.withLockedValue { $0 += 1 }
            let identity = try ca.mintLeaf(for: [name])
            return TLSServerSettings(certificateChainPEM: identity.certificateChainPEM, privateKeyPEM: identity.privateKeyPEM)
        }
        for index in 0..<200 {
            _ = try certificates.context(for: "host\(index).example")
            _ = try certificates.context(for: "busy.example")
        }
        #expect(certificates.cached == 16)
        #expect(minted.withLockedValue { $0 } == 201, "busy.example stayed recent, so it was minted once")
    }
}
