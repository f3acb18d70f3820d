import Crypto
public import Foundation
import SwiftASN1
public import X509

/// siotap's own certificate authority: a P-256 key and a self-signed certificate, valid ten years,
/// kept in a directory (`ca.pem`, and `ca-key.pem` readable by its owner only). The proxy signs
/// the certificates it serves with it; users trust its certificate in the clients they debug.
public struct LocalCA: Sendable {
    public let certificate: Certificate
    let key: P256.Signing.PrivateKey

    /// `O=siotap,CN=siotap local CA host`, as OpenSSL writes names.
    public var subject: String { certificate.subject.description }
    public var notValidBefore: Date { certificate.notValidBefore }
    public var notValidAfter: Date { certificate.notValidAfter }

    public static let certificateFile = "ca.pem"
    public static let keyFile = "ca-key.pem"
    public static let lifetime: TimeInterval = 10 * 365.25 * 86_400

    /// `$SIOTAP_HOME/ca`, else `~/.siotap/ca`.
    public static func defaultDirectory(environment: [String: String]) -> String {
        if let home = environment["SIOTAP_HOME"], !home.isEmpty { return home + "/ca" }
        return (environment["HOME"] ?? NSHomeDirectory()) + "/.siotap/ca"
    }

    /// Makes a CA named "siotap local CA `hostName`" and writes it to `directory` (created if
    /// needed, mode 0700, or narrowed to it). Refuses when either file is already there: a CA users trust is not
    /// replaced by accident.
    public static func create(in directory: String, hostName: String, now: Date = Date()) throws(LocalCAError) -> LocalCA {
        let files = FileManager.default
        for name in [certificateFile, keyFile] where files.fileExists(atPath: directory + "/" + name) {
            throw LocalCAError(.exists, "\(directory)/\(name) already exists; siotap does not replace a CA (remove the directory to make a new one)")
        }
        let key = P256.Signing.PrivateKey()
        let certificate: Certificate
        do {
            let name = try DistinguishedName {
                OrganizationName("siotap")
                CommonName("siotap local CA \(hostName)")
            }
            let publicKey = Certificate.PublicKey(key.publicKey)
            certificate = try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(),
                publicKey: publicKey,
                // An hour back, for clocks a little behind this one.
                notValidBefore: now.addingTimeInterval(-3600),
                notValidAfter: now.addingTimeInterval(lifetime),
                issuer: name,
                subject: name,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: publicKey)
                },
                issuerPrivateKey: Certificate.PrivateKey(key)
            )
        } catch {
            throw LocalCAError(.invalid, "cannot make the certificate: \(error)")
        }
        let ca = LocalCA(certificate: certificate, key: key)
        try makePrivateDirectory(directory)
        try writeNew(directory + "/" + keyFile, Array((key.pemRepresentation + "\n").utf8), mode: 0o600)
        try writeNew(directory + "/" + certificateFile, Array((try ca.certificatePEM() + "\n").utf8), mode: 0o644)
        return ca
    }

    /// Makes `directory` (and its parents) with mode 0700, or narrows an existing one to 0700: the
    /// key goes in it, and a directory others can list or enter is one step from a key they can read.
    static func makePrivateDirectory(_ directory: String) throws(LocalCAError) {
        let parent = (directory as NSString).deletingLastPathComponent
        if !parent.isEmpty, !FileManager.default.fileExists(atPath: parent) {
            do { try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true) } catch {
                throw LocalCAError(.unwritable, "cannot make \(parent): \(error.localizedDescription)")
            }
        }
        if mkdir(directory, 0o700) != 0 {
            let error = errno
            guard error == EEXIST else { throw LocalCAError(.unwritable, "cannot make \(directory): \(String(cString: strerror(error)))") }
            guard chmod(directory, 0o700) == 0 else {
                throw LocalCAError(.unwritable, "cannot make \(directory) private (mode 0700): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Writes a new file created with `mode` (the umask can only narrow it), never an existing one.
    static func writeNew(_ path: String, _ bytes: [UInt8], mode: mode_t) throws(LocalCAError) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw LocalCAError(.unwritable, "cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { throw LocalCAError(.unwritable, "cannot write \(path): \(String(cString: strerror(errno)))") }
            written += count
        }
    }

    /// Reads the CA in `directory`.
    public static func load(from directory: String) throws(LocalCAError) -> LocalCA {
        let certificatePath = directory + "/" + certificateFile, keyPath = directory + "/" + keyFile
        guard let certificateText = try? String(contentsOfFile: certificatePath, encoding: .utf8) else {
            throw LocalCAError(.missing, "no CA in \(directory) (\(certificateFile) is missing or unreadable): make one with `siotap ca init`")
        }
        guard let keyText = try? String(contentsOfFile: keyPath, encoding: .utf8) else {
            throw LocalCAError(.missing, "\(keyPath) is missing or unreadable")
        }
        let certificate: Certificate, key: P256.Signing.PrivateKey
        do { certificate = try Certificate(pemEncoded: certificateText) } catch {
            throw LocalCAError(.invalid, "\(certificatePath) is not a PEM certificate: \(error)")
        }
        do { key = try P256.Signing.PrivateKey(pemRepresentation: keyText) } catch {
            throw LocalCAError(.invalid, "\(keyPath) is not a P-256 private key in PEM: \(error)")
        }
        guard certificate.publicKey == Certificate.PublicKey(key.publicKey) else {
            throw LocalCAError(.invalid, "\(keyPath) is not the key of \(certificatePath)")
        }
        return LocalCA(certificate: certificate, key: key)
    }

    public func certificatePEM() throws(LocalCAError) -> String {
        do { return try certificate.serializeAsPEM().pemString } catch {
            throw LocalCAError(.invalid, "cannot encode the certificate: \(error)")
        }
    }

    public func certificateDER() throws(LocalCAError) -> [UInt8] {
        var serializer = DER.Serializer()
        do { try serializer.serialize(certificate) } catch {
            throw LocalCAError(.invalid, "cannot encode the certificate: \(error)")
        }
        return serializer.serializedBytes
    }

    /// SHA-256 of the DER certificate, as `AB:CD:…`: what browsers and `openssl x509 -fingerprint
    /// -sha256` show.
    public func fingerprintSHA256() throws(LocalCAError) -> String {
        SHA256.hash(data: try certificateDER()).map { byte in
            let hex = String(byte, radix: 16, uppercase: true)
            return byte < 16 ? "0" + hex : hex
        }.joined(separator: ":")
    }
}
