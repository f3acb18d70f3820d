#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import NIOTLS

/// What a TLS listener presents, and whom it tells of handshakes that fail.
public struct TLSServerSettings: Sendable {
    /// PEM certificates (one or more to an element), the server's first, then its chain.
    public var certificateChainPEM: [String]
    public var privateKeyPEM: String
    /// Told of each client whose handshake failed: its address and why (it does not trust the
    /// certificate, it spoke plain HTTP, …).
    public var handshakeFailed: @Sendable (_ remote: String, _ reason: String) -> Void
    /// Where to append each session's secrets in the NSS key log format (`SSLKEYLOGFILE`), so
    /// Wireshark can decrypt a capture of the client's side.
    public var keyLogPath: String?

    public init(
        certificateChainPEM: [String], privateKeyPEM: String, keyLogPath: String? = nil,
        handshakeFailed: @escaping @Sendable (String, String) -> Void = { _, _ in }
    ) {
        self.certificateChainPEM = certificateChainPEM
        self.privateKeyPEM = privateKeyPEM
        self.keyLogPath = keyLogPath
        self.handshakeFailed = handshakeFailed
    }

    /// HTTP/1.1 only (announced by ALPN), TLS 1.2 and 1.3.
    func makeContext() throws -> NIOSSLContext {
        let chain = try certificateChainPEM.flatMap { try NIOSSLCertificate.fromPEMBytes(Array($0.utf8)) }
        let key = try NIOSSLPrivateKey(bytes: Array(privateKeyPEM.utf8), format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.applicationProtocols = ["http/1.1"]
        configuration.minimumTLSVersion = .tlsv12
        if let keyLogPath {
            let log = try KeyLog(path: keyLogPath)
            configuration.keyLogCallback = { line in log.append(line) }
        }
        return try NIOSSLContext(configuration: configuration)
    }
}

/// An NSS key log file, appended to line by line from any event loop.
final class KeyLog: Sendable {
    private let descriptor: NIOLockedValueBox<Int32>

    struct CannotOpen: Error, CustomStringConvertible {
        let path: String
        var description: String { "cannot open the key log \(path) (SSLKEYLOGFILE)" }
    }

    init(path: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        guard descriptor >= 0 else { throw CannotOpen(path: path) }
        self.descriptor = NIOLockedValueBox(descriptor)
    }

    deinit {
        close(descriptor.withLockedValue { $0 })
    }

    func append(_ line: ByteBuffer) {
        var bytes = Array(line.readableBytesView)
        if bytes.last != UInt8(ascii: "\n") { bytes.append(UInt8(ascii: "\n")) }
        descriptor.withLockedValue { descriptor in
            _ = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        }
    }
}

/// Reports a handshake that fails, once, and nothing after the handshake is done. A connection
/// closed before any handshake (a port probe) is not reported; a client that refuses the
/// certificate says so with an alert, which fails the handshake here.
final class TLSHandshakeWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let failed: @Sendable (String, String) -> Void
    private var done = false

    init(failed: @escaping @Sendable (String, String) -> Void) {
        self.failed = failed
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent { done = true }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !done {
            done = true
            let remote = context.channel.remoteDescription
            failed(remote, Self.describe(error))
        }
        context.fireErrorCaught(error)
    }

    /// Why a handshake failed, in words, with BoringSSL's reason codes after them.
    static func describe(_ error: any Error) -> String {
        let text = String(describing: error)
        var reasons: [String] = []
        var rest = text[...]
        while let marker = rest.firstRange(of: "OPENSSL_internal:") {
            let reason = rest[marker.upperBound...].prefix { $0.isUppercase || $0.isNumber || $0 == "_" }
            if !reason.isEmpty, !reasons.contains(String(reason)) { reasons.append(String(reason)) }
            rest = rest[marker.upperBound...]
        }
        guard !reasons.isEmpty else { return "TLS handshake failed: \(text)" }
        let said: String
        if reasons.contains(where: { $0.hasPrefix("HTTP") }) {
            said = "the client spoke plain HTTP to the TLS port"
        } else if reasons.contains(where: { ["TLSV1_ALERT_UNKNOWN_CA", "SSLV3_ALERT_BAD_CERTIFICATE", "SSLV3_ALERT_CERTIFICATE_UNKNOWN"].contains($0) }) {
            said = "the client does not trust the certificate"
        } else if reasons.contains(where: { ["BAD_PACKET_LENGTH", "DECRYPTION_FAILED_OR_BAD_RECORD_MAC"].contains($0) }) {
            // What a TLS 1.3 client's alert looks like here when it refuses the certificate.
            said = "the client ended the handshake (most likely it does not trust the certificate)"
        } else {
            said = "TLS handshake failed"
        }
        return "\(said) (\(reasons.joined(separator: ", ")))"
    }
}
