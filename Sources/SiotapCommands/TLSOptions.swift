import ArgumentParser
import Foundation
import SocketIOProxy
import SocketIOTransport
import TLSCertificates

/// What `--tls` says to serve, and how to speak TLS to an `https://` upstream.
enum TLSOptions {
    static let defaultNames = ["localhost", "127.0.0.1"]

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
        let parts = value.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw ValidationError("--tls takes 'auto' or CERT.pem:KEY.pem, not '\(value)'")
        }
        guard let chain = try? String(contentsOfFile: parts[0], encoding: .utf8) else { throw CommandFailure("cannot read \(parts[0])") }
        guard let key = try? String(contentsOfFile: parts[1], encoding: .utf8) else { throw CommandFailure("cannot read \(parts[1])") }
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
