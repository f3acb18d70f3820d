import ArgumentParser
import Foundation
import SocketIOProxy
import SocketIOTransport
import TLSCertificates

/// `--tls`, `--tls-name`, `--ca-dir`, `--upstream-ca` and `--insecure`: what the proxy serves, and
/// how it speaks TLS to an `https://` upstream (or, in forward mode, to every host).
struct TLSOptions: ParsableArguments {
    @Option(help: "Serve HTTPS and WSS: 'auto' (a certificate for the --tls-name names, signed by the local CA of 'siotap ca', made if there is none) or CERT.pem:KEY.pem.")
    var tls: String?

    @Option(name: .customLong("upstream-ca"), help: "PEM file of the CA(s) to trust for an https upstream, instead of the system's trust store.")
    var upstreamCA: String?

    @Flag(help: "Do not verify an https upstream's certificate (said on every start line).")
    var insecure = false

    @Option(name: .customLong("tls-name"), help: "A name the --tls auto certificate is for; repeatable (default: localhost and 127.0.0.1).")
    var tlsNames: [String] = []

    @Option(name: .customLong("ca-dir"), help: "The local CA's directory (default: $SIOTAP_HOME/ca, else ~/.siotap/ca).")
    var caDir: String?

    static let defaultNames = ["localhost", "127.0.0.1"]

    func validate() throws {
        if let tls, tls != "auto", Self.certificateFiles(tls) == nil {
            throw ValidationError("--tls takes 'auto' or CERT.pem:KEY.pem, not '\(tls)'")
        }
    }

    /// What to serve, if `--tls` asks for it.
    func serving(io: CommandIO) throws -> TLSServerSettings? {
        try tls.map { try Self.settings($0, names: tlsNames, caDirectory: caDir, io: io) }
    }

    /// TLS to the reverse-mode upstream, when it is `https://`.
    func upstream(_ url: UpstreamURL, io: CommandIO) throws -> TLSClientSettings? {
        try Self.upstream(url, caFile: upstreamCA, insecure: insecure, io: io)
    }

    /// Forward mode's TLS (see ``forward(caDirectory:upstreamCA:insecure:intercepts:explicitlyAllowed:io:)``).
    func forward(
        intercepts: @escaping @Sendable (String, Int) -> Bool, explicitlyAllowed: @escaping @Sendable (String, Int) -> Bool, io: CommandIO
    ) throws -> (settings: ForwardSettings, caFile: String) {
        try Self.forward(caDirectory: caDir, upstreamCA: upstreamCA, insecure: insecure, intercepts: intercepts, explicitlyAllowed: explicitlyAllowed, io: io)
    }

    private static func certificateFiles(_ value: String) -> (chain: String, key: String)? {
        let parts = value.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        return (parts[0], parts[1])
    }

    /// `auto`: a certificate for `names` minted by the local CA (made first when there is none,
    /// and said so); `CERT.pem:KEY.pem`: those files.
    static func settings(_ value: String, names: [String], caDirectory: String?, io: CommandIO) throws -> TLSServerSettings {
        if value == "auto" {
            do {
                let identity = try localCA(caDirectory, io: io).ca.mintLeaf(for: names.isEmpty ? defaultNames : names)
                return TLSServerSettings(
                    certificateChainPEM: identity.certificateChainPEM, privateKeyPEM: identity.privateKeyPEM, keyLogPath: keyLog(io)
                )
            } catch {
                throw CommandFailure(error.description)
            }
        }
        guard let files = certificateFiles(value) else { throw ValidationError("--tls takes 'auto' or CERT.pem:KEY.pem, not '\(value)'") }
        guard let chain = try? String(contentsOfFile: files.chain, encoding: .utf8) else { throw CommandFailure("cannot read \(files.chain)") }
        guard let key = try? String(contentsOfFile: files.key, encoding: .utf8) else { throw CommandFailure("cannot read \(files.key)") }
        return TLSServerSettings(certificateChainPEM: [chain], privateKeyPEM: key, keyLogPath: keyLog(io))
    }

    /// The local CA of `directory` (or the default one), made first when there is none (and said so).
    static func localCA(_ directory: String?, io: CommandIO) throws(LocalCAError) -> (ca: LocalCA, directory: String) {
        let directory = directory ?? LocalCA.defaultDirectory(environment: io.environment)
        if FileManager.default.fileExists(atPath: directory + "/" + LocalCA.certificateFile) {
            return (try LocalCA.load(from: directory), directory)
        }
        let ca = try LocalCA.create(in: directory, hostName: ProcessInfo.processInfo.hostName)
        io.writeError("siotap proxy: made a local CA in \(directory); clients must trust \(directory)/\(LocalCA.certificateFile)\n")
        return (ca, directory)
    }

    /// Forward mode's TLS: leaves minted by the local CA for the names clients ask for, and the
    /// real hosts checked against the system's trust store, `caFile`, or not at all.
    static func forward(
        caDirectory: String?, upstreamCA: String?, insecure: Bool, intercepts: @escaping @Sendable (String, Int) -> Bool,
        explicitlyAllowed: @escaping @Sendable (String, Int) -> Bool, io: CommandIO
    ) throws -> (settings: ForwardSettings, caFile: String) {
        let local: (ca: LocalCA, directory: String)
        do { local = try localCA(caDirectory, io: io) } catch { throw CommandFailure(error.description) }
        let trust = try trust(caFile: upstreamCA, insecure: insecure)
        // Checked once here, so that a bad --upstream-ca fails the start, not each host.
        do { _ = try TLSClientSettings(trust: trust, serverName: "localhost") } catch {
            throw CommandFailure(.badInput, "\(upstreamCA ?? "the trust store"): \(error)")
        }
        let ca = local.ca
        let keyLogPath = keyLog(io)
        let certificates = TLSInterception { name in
            let identity = try ca.mintLeaf(for: [name])
            return TLSServerSettings(certificateChainPEM: identity.certificateChainPEM, privateKeyPEM: identity.privateKeyPEM, keyLogPath: keyLogPath)
        }
        let settings = ForwardSettings(
            certificates: certificates, upstreamTrust: trust, keyLogPath: keyLogPath, intercepts: intercepts, explicitlyAllowed: explicitlyAllowed
        )
        return (settings, local.directory + "/" + LocalCA.certificateFile)
    }

    private static func trust(caFile: String?, insecure: Bool) throws -> TLSClientSettings.Trust {
        if insecure { return .none }
        guard let caFile else { return .system }
        guard let pem = try? String(contentsOfFile: caFile, encoding: .utf8) else { throw CommandFailure("cannot read \(caFile)") }
        return .certificates(pem: pem)
    }

    /// TLS to an `https://` upstream: the system's trust store, the CAs of `caFile`, or nothing
    /// checked (`--insecure`). `nil` for a plain upstream.
    static func upstream(_ url: UpstreamURL, caFile: String?, insecure: Bool, io: CommandIO) throws -> TLSClientSettings? {
        guard url.tls else {
            if caFile != nil || insecure { throw ValidationError("--upstream-ca and --insecure are for an https:// upstream") }
            return nil
        }
        let trust = try trust(caFile: caFile, insecure: insecure)
        do { return try TLSClientSettings(trust: trust, serverName: url.host, keyLogPath: keyLog(io)) } catch {
            throw CommandFailure(.badInput, "\(caFile ?? "the trust store"): \(error)")
        }
    }

    /// `SSLKEYLOGFILE`, as browsers and curl honour it.
    private static func keyLog(_ io: CommandIO) -> String? {
        io.environment["SSLKEYLOGFILE"].flatMap { $0.isEmpty ? nil : $0 }
    }
}
