import Crypto
public import Foundation
import SwiftASN1
import X509

/// A certificate chain and its key, as PEM: what a TLS server presents.
public struct ServerIdentity: Sendable {
    /// The leaf first, then the CA.
    public var certificateChainPEM: [String]
    public var privateKeyPEM: String

    public init(certificateChainPEM: [String], privateKeyPEM: String) {
        self.certificateChainPEM = certificateChainPEM
        self.privateKeyPEM = privateKeyPEM
    }
}

extension LocalCA {
    /// How long a minted certificate is valid: they are made anew at every start, and browsers
    /// refuse leaves valid for more than 398 days.
    public static let leafLifetime: TimeInterval = 30 * 86_400

    /// A server certificate for `names` (DNS names, or IP addresses written as such), signed by
    /// this CA, with a new P-256 key.
    public func mintLeaf(for names: [String], now: Date = Date()) throws(LocalCAError) -> ServerIdentity {
        guard let first = names.first else { throw LocalCAError(.invalid, "a certificate needs at least one name") }
        let key = P256.Signing.PrivateKey()
        do {
            let publicKey = Certificate.PublicKey(key.publicKey)
            let leaf = try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(),
                publicKey: publicKey,
                notValidBefore: now.addingTimeInterval(-3600),
                notValidAfter: min(now.addingTimeInterval(Self.leafLifetime), certificate.notValidAfter),
                issuer: certificate.subject,
                subject: try DistinguishedName {
                    OrganizationName("siotap")
                    CommonName(first)
                },
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                    try ExtendedKeyUsage([.serverAuth])
                    SubjectAlternativeNames(names.map(Self.generalName))
                    SubjectKeyIdentifier(hash: publicKey)
                    AuthorityKeyIdentifier(keyIdentifier: try certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
                },
                issuerPrivateKey: Certificate.PrivateKey(self.key)
            )
            return ServerIdentity(
                certificateChainPEM: [try leaf.serializeAsPEM().pemString, try certificatePEM()],
                privateKeyPEM: key.pemRepresentation
            )
        } catch let error as LocalCAError {
            throw error
        } catch {
            throw LocalCAError(.invalid, "cannot make a certificate for \(names.joined(separator: ", ")): \(error)")
        }
    }

    static func generalName(_ name: String) -> GeneralName {
        if let bytes = ipv4Bytes(name) ?? ipv6Bytes(name) { return .ipAddress(ASN1OctetString(contentBytes: bytes[...])) }
        return .dnsName(name)
    }

    private static func ipv4Bytes(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        let bytes = parts.compactMap { UInt8($0) }
        return bytes.count == 4 ? bytes : nil
    }

    private static func ipv6Bytes(_ text: String) -> [UInt8]? {
        guard text.contains(":") else { return nil }
        var address = in6_addr()
        guard inet_pton(AF_INET6, text, &address) == 1 else { return nil }
        return withUnsafeBytes(of: &address) { Array($0) }
    }
}
