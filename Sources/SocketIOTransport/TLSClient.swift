#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOPosix
import NIOSSL
import SocketIOProtocol

/// TLS to an upstream: what to trust, and the name to ask for and check.
public struct TLSClientSettings: Sendable {
    public enum Trust: Sendable {
        /// The system's trust store.
        case system
        /// These PEM certificates only (`--upstream-ca`).
        case certificates(pem: String)
        /// Nothing checked (`--insecure`).
        case none
    }

    public var trust: Trust
    /// Sent as SNI (when it is a name, not an address) and checked against the certificate.
    public var serverName: String
    let context: NIOSSLContext

    /// Where the upstream sessions' secrets are appended (`SSLKEYLOGFILE`), if anywhere.
    public let keyLogPath: String?

    public init(trust: Trust, serverName: String, keyLogPath: String? = nil) throws {
        self.trust = trust
        self.serverName = serverName
        self.keyLogPath = keyLogPath
        var configuration = try Self.configuration(trust, hostnames: true)
        if let keyLogPath {
            let log = try KeyLog(path: keyLogPath)
            configuration.keyLogCallback = { line in log.append(line) }
        }
        context = try NIOSSLContext(configuration: configuration)
    }

    static func configuration(_ trust: Trust, hostnames: Bool) throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.applicationProtocols = ["http/1.1"]
        configuration.minimumTLSVersion = .tlsv12
        switch trust {
        case .system: break
        case .certificates(let pem): configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(pem.utf8)))
        case .none: configuration.certificateVerification = .none
        }
        if !hostnames, configuration.certificateVerification == .fullVerification {
            configuration.certificateVerification = .noHostnameVerification
        }
        return configuration
    }

    /// SNI carries names only: an IP address is not sent.
    var sniName: String? {
        serverName.contains(":") || serverName.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : serverName
    }

    /// The TLS handler that goes first in a connection's pipeline.
    func handler() throws -> NIOSSLClientHandler {
        try NIOSSLClientHandler(context: context, serverHostname: sniName)
    }

    /// Why a handshake with `host:port` failed verification, in words: the certificate expired (or
    /// is not valid yet), is for other names, or is signed by no CA that is trusted. Found by
    /// connecting again without checking (to read the certificate), then without the name check.
    public func diagnose(host: String, port: Int) async -> String {
        guard let certificate = try? await peerCertificate(host: host, port: port, configuration: Self.configuration(.none, hostnames: false)) else {
            return "the TLS handshake failed"
        }
        let now = time(nil)
        if certificate.notValidAfter < now {
            return "the upstream's certificate expired at \(RFC3339.format(secondsSince1970: Double(certificate.notValidAfter), fractionDigits: 0))"
        }
        if certificate.notValidBefore > now {
            return "the upstream's certificate is not valid before \(RFC3339.format(secondsSince1970: Double(certificate.notValidBefore), fractionDigits: 0))"
        }
        if (try? await peerCertificate(host: host, port: port, configuration: Self.configuration(trust, hostnames: false))) != nil {
            return "the upstream's certificate is not for \(serverName) (\(certificate.description))"
        }
        return "the upstream's certificate is not signed by a trusted CA (unknown issuer)"
    }

    private func peerCertificate(host: String, port: Int, configuration: TLSConfiguration) async throws -> NIOSSLCertificate {
        let context = try NIOSSLContext(configuration: configuration)
        let sni = sniName
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: sni))
                }
            }
            .connect(host: host, port: port).get()
        defer { channel.close(promise: nil) }
        // The handshake is done once the peer's certificate can be read, or it failed.
        for _ in 0..<100 {
            if !channel.isActive { break }
            let certificate = try await channel.eventLoop.submit {
                try channel.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self).peerCertificate
            }.get()
            if let certificate { return certificate }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw ChannelError.ioOnClosedChannel
    }
}
