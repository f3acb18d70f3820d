#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import SocketIOProtocol
import TransportCore

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

    /// The last certificate an upstream presented through these settings (DER), for the record.
    public var lastPeerCertificate: [UInt8]? { peer.withLockedValue { $0 } }
    private let peer = NIOLockedValueBox<[UInt8]?>(nil)

    /// Whether a connection failed in TLS (the handshake, a certificate), not in TCP.
    package static func isHandshakeFailure(_ error: any Error) -> Bool {
        error is NIOSSLError || error is NIOSSLExtraError || error is BoringSSLError
    }

    /// Puts TLS first in a new connection's pipeline, and notes the certificate it is shown.
    package func addHandlers(to pipeline: ChannelPipeline.SynchronousOperations) throws {
        let handler = try NIOSSLClientHandler(context: context, serverHostname: sniName)
        try pipeline.addHandler(handler)
        try pipeline.addHandler(TLSHandshakeWatcher(failed: { _, _ in }) { [peer] _ in
            if let der = try? handler.peerCertificate?.toDERBytes() { peer.withLockedValue { $0 = der } }
        })
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
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: sni))
                    try channel.pipeline.syncOperations.addHandler(HandshakeOutcome(channel.eventLoop.makePromise()))
                }
            }
            .connect(host: host, port: port).get()
        defer { channel.close(promise: nil) }
        // Only a completed handshake says the certificate passed: BoringSSL knows the peer's
        // certificate before it has judged it.
        let outcome = try await channel.eventLoop.submit { try channel.pipeline.syncOperations.handler(type: HandshakeOutcome.self).done.futureResult }.get()
        try await outcome.get()
        return try await channel.eventLoop.submit {
            guard let certificate = try channel.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self).peerCertificate else {
                throw ChannelError.ioOnClosedChannel
            }
            return certificate
        }.get()
    }
}

/// Completes once a TLS handshake is done, or fails with what ended it.
private final class HandshakeOutcome: ChannelInboundHandler {
    typealias InboundIn = NIOAny
    let done: EventLoopPromise<Void>

    init(_ done: EventLoopPromise<Void>) {
        self.done = done
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent { done.succeed() }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        done.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.fail(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }

    /// A connection that never came up is never inactive: the promise must not be left unkept.
    func handlerRemoved(context: ChannelHandlerContext) {
        done.fail(ChannelError.ioOnClosedChannel)
    }
}
