public import TrafficCapture

extension JWTRecord {
    /// The capture record of an inspected token found at `source`.
    public init(report: JWTReport, source: TokenSource, nsp: String? = nil) {
        self.init(
            source: source, nsp: nsp, header: report.header, claims: report.claims, verified: report.verified,
            reason: report.failure?.message, exp: report.expiresAt, iat: report.issuedAt, nbf: report.notBefore,
            expiresInSeconds: report.expiresInSeconds, warnings: report.warnings.isEmpty ? nil : report.warnings
        )
    }
}
