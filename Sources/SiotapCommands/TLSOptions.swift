import ArgumentParser
import Foundation
import SocketIOTransport
import TLSCertificates

/// What `--tls` says to serve, and how to speak TLS to an `https://` upstream.
enum TLSOptions {
    static let defaultNames = ["localhost", "127.0.0.1"]

    /// `auto`: a certificate for `names` minted by the local CA (made first when there is none,
    /// and said so); `CERT.pem:KEY.pem`: those files.
    static func settings(_ value: String, names: [String], caDirectory: String?, io: CommandIO) throws -> TLSServerSettings {
        if value == "auto" {
            let directory = caDirectory ?? LocalCA.defaultDirectory(environment: io.environment)
            let ca: LocalCA
            do {
                if FileManager.default.fileExists(atPath: directory + "/" + LocalCA.certificateFile) {
                    ca = try LocalCA.load(from: directory)
                } else {
                    ca = try LocalCA.create(in: directory, hostName: ProcessInfo.processInfo.hostName)
                    io.writeError("siotap proxy: made a local CA in \(directory); clients must trust \(directory)/\(LocalCA.certificateFile)\n")
                }
                let identity = try ca.mintLeaf(for: names.isEmpty ? defaultNames : names)
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

    /// TLS to an `https://` upstream: the system's trust store, the CAs of `caFile`, or nothing
    /// checked (`--insecure`). `nil` for a plain upstream.
    static func upstream(_ url: UpstreamURL, caFile: String?, insecure: Bool, io: CommandIO) throws -> TLSClientSettings? {
        guard url.tls else {
            if caFile != nil || insecure { throw ValidationError("--upstream-ca and --insecure are for an https:// upstream") }
            return nil
        }
        let trust: TLSClientSettings.Trust
        if insecure {
            trust = .none
        } else if let caFile {
            guard let pem = try? String(contentsOfFile: caFile, encoding: .utf8) else { throw CommandFailure("cannot read \(caFile)") }
            trust = .certificates(pem: pem)
        } else {
            trust = .system
        }
        do { return try TLSClientSettings(trust: trust, serverName: url.host, keyLogPath: keyLog(io)) } catch {
            throw CommandFailure(.badInput, "\(caFile ?? "the trust store"): \(error)")
        }
    }

    /// `SSLKEYLOGFILE`, as browsers and curl honour it.
    private static func keyLog(_ io: CommandIO) -> String? {
        io.environment["SSLKEYLOGFILE"].flatMap { $0.isEmpty ? nil : $0 }
    }
}
