#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import NIOTLS
import SocketIOProtocol
import TransportCore

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
    package func makeContext() throws -> NIOSSLContext {
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
package final class TLSHandshakeWatcher: ChannelInboundHandler, RemovableChannelHandler {
    package typealias InboundIn = NIOAny
    private let failed: @Sendable (String, String) -> Void
    private let completed: ((ChannelHandlerContext) -> Void)?
    private var done = false

    package init(failed: @escaping @Sendable (String, String) -> Void, completed: ((ChannelHandlerContext) -> Void)? = nil) {
        self.failed = failed
        self.completed = completed
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case .handshakeCompleted = event as? TLSUserEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        done = true
        completed?(context)
        context.fireUserInboundEventTriggered(event)
        // Nothing to watch after the handshake: out of the way of every read.
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
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

/// What a client and siotap agreed on in a TLS handshake.
public struct TLSHandshakeDetails: Sendable, Hashable {
    /// `TLSv1.2`, `TLSv1.3`.
    public var version: String?
    /// The IANA name of the cipher suite (`TLS_AES_128_GCM_SHA256`), or its number in hex.
    public var cipher: String?
    /// The name the client asked for (SNI), if it sent one.
    public var serverName: String?

    public init(version: String? = nil, cipher: String? = nil, serverName: String? = nil) {
        self.version = version
        self.cipher = cipher
        self.serverName = serverName
    }

    package static func versionName(_ version: TLSVersion?) -> String? {
        switch version {
        case .tlsv1: "TLSv1"
        case .tlsv11: "TLSv1.1"
        case .tlsv12: "TLSv1.2"
        case .tlsv13: "TLSv1.3"
        case nil: nil
        }
    }
}

/// The certificates a forward proxy presents for the names clients ask for: minted on first use
/// (by `mint`) and kept, one TLS context per name, for the `capacity` names used last (a client
/// can ask for any number of names; a browsing session uses a few hundred).
public final class TLSInterception: Sendable {
    public static let defaultCapacity = 2048
    private let mint: @Sendable (_ name: String) throws -> TLSServerSettings
    private let contexts: NIOLockedValueBox<LRUCache<String, NIOSSLContext>>

    public init(capacity: Int = TLSInterception.defaultCapacity, mint: @escaping @Sendable (_ name: String) throws -> TLSServerSettings) {
        self.mint = mint
        self.contexts = NIOLockedValueBox(LRUCache(capacity: capacity))
    }

    /// How many names have a context now.
    public var cached: Int { contexts.withLockedValue { $0.count } }

    /// The context for `name`, minted the first time (a few milliseconds, on the caller's thread).
    package func context(for name: String) throws -> NIOSSLContext {
        if let known = contexts.withLockedValue({ $0.value(for: name) }) { return known }
        let made = try mint(name).makeContext()
        return contexts.withLockedValue { contexts in
            if let raced = contexts.value(for: name) { return raced }
            contexts.set(made, for: name)
            return made
        }
    }
}

/// Reads the cipher suite out of the ServerHello siotap writes (NIOSSL does not say which it
/// chose). It sits between the socket and the TLS handler, and looks at the first write only.
/// (It stays: removing itself from inside that write broke the handshake's next writes.)
package final class ServerHelloSniffer: ChannelOutboundHandler, RemovableChannelHandler {
    package init() {}

    package typealias OutboundIn = ByteBuffer
    package private(set) var cipherSuite: UInt16?
    private var looked = false

    package func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if !looked {
            looked = true
            let buffer = unwrapOutboundIn(data)
            cipherSuite = buffer.withUnsafeReadableBytes { Self.cipherSuite(inServerHello: $0) }
        }
        context.write(data, promise: promise)
    }

    /// The cipher suite of a TLS record that holds a ServerHello (RFC 8446 §4.1.3), or nil.
    static func cipherSuite(inServerHello bytes: UnsafeRawBufferPointer) -> UInt16? {
        // record: type 22, version (2), length (2); handshake: type 2, length (3); version (2),
        // random (32), session id (1 + n), cipher suite (2).
        guard bytes.count > 43, bytes[0] == 22, bytes[5] == 2 else { return nil }
        let sessionIDLength = Int(bytes[43])
        let at = 44 + sessionIDLength
        guard bytes.count >= at + 2 else { return nil }
        return UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1])
    }

    package static func name(ofCipherSuite suite: UInt16) -> String {
        switch suite {
        case 0x1301: "TLS_AES_128_GCM_SHA256"
        case 0x1302: "TLS_AES_256_GCM_SHA384"
        case 0x1303: "TLS_CHACHA20_POLY1305_SHA256"
        case 0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
        case 0xC02C: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
        case 0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        case 0xC030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
        case 0xCCA8: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
        case 0xCCA9: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
        default: "0x" + String(suite, radix: 16, uppercase: true)
        }
    }
}
