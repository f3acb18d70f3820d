public import Foundation
import SwiftASN1
import X509

/// Who a certificate is for, who signed it, and until when: what a capture says of an upstream.
public struct CertificateSummary: Sendable, Hashable {
    public var subject: String
    public var issuer: String
    public var notValidAfter: Date

    /// `nil` when `der` is not an X.509 certificate.
    public init?(derEncoded der: [UInt8]) {
        guard let certificate = try? Certificate(derEncoded: der) else { return nil }
        subject = certificate.subject.description
        issuer = certificate.issuer.description
        notValidAfter = certificate.notValidAfter
    }

    /// ``notValidAfter`` in seconds since 1970.
    public var notValidAfterSeconds: Double { notValidAfter.timeIntervalSince1970 }
}
