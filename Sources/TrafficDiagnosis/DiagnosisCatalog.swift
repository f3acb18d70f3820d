public import TrafficCapture

/// Every diagnosis siotap makes: its code, how bad, and the socket.io documentation's section on
/// the fix. `docs/diagnoses.md` explains each (a test holds the two together).
public enum DiagnosisCatalog {
    public struct Entry: Sendable {
        public let code: DiagnosisCode
        public let severity: DiagnosisRecord.Severity
        public let docs: String
    }

    static let troubleshooting = "https://socket.io/docs/v4/troubleshooting-connection-issues/"

    public static let stickySessionUnknown = Entry(
        code: "sticky.session_unknown", severity: .error, docs: "https://socket.io/docs/v4/using-multiple-nodes/#enabling-sticky-session"
    )
    public static let upgradeRefused = Entry(code: "upgrade.refused", severity: .warn, docs: "https://socket.io/docs/v4/reverse-proxy/")
    public static let upgradeHeadersLost = Entry(code: "upgrade.headers_lost", severity: .error, docs: "https://socket.io/docs/v4/reverse-proxy/#nginx")
    public static let transportNeverUpgraded = Entry(
        code: "transport.never_upgraded", severity: .warn, docs: troubleshooting + "#problem-the-socket-is-stuck-in-http-long-polling"
    )
    public static let versionMismatch = Entry(code: "version.mismatch", severity: .error, docs: "https://socket.io/docs/v4/migrating-from-2-x-to-3-0/#how-to-upgrade-an-existing-production-deployment")
    public static let heartbeatIntermediaryTimeout = Entry(
        code: "heartbeat.intermediary_timeout", severity: .error, docs: "https://socket.io/docs/v4/reverse-proxy/"
    )
    public static let heartbeatPingTimeout = Entry(code: "heartbeat.ping_timeout", severity: .error, docs: "https://socket.io/docs/v4/how-it-works/#disconnection-detection")
    public static let payloadTooLarge = Entry(code: "payload.too_large", severity: .error, docs: "https://socket.io/docs/v4/server-options/#maxhttpbuffersize")
    public static let corsOriginRefused = Entry(code: "cors.origin_refused", severity: .error, docs: "https://socket.io/docs/v4/handling-cors/")
    public static let tokenExpired = Entry(code: "auth.token_expired", severity: .error, docs: "https://socket.io/docs/v4/middlewares/#sending-credentials")
    public static let tokenNotYetValid = Entry(code: "auth.token_not_yet_valid", severity: .error, docs: "https://socket.io/docs/v4/middlewares/#sending-credentials")
    public static let tokenBadSignature = Entry(code: "auth.token_bad_signature", severity: .error, docs: "https://socket.io/docs/v4/middlewares/#sending-credentials")
    public static let tokenMissing = Entry(code: "auth.token_missing", severity: .error, docs: "https://socket.io/docs/v4/middlewares/#sending-credentials")
    public static let connectRefused = Entry(code: "auth.refused", severity: .warn, docs: "https://socket.io/docs/v4/middlewares/#handling-middleware-error")
    public static let namespaceUnknown = Entry(code: "namespace.unknown", severity: .error, docs: "https://socket.io/docs/v4/namespaces/")
    public static let reconnectStorm = Entry(code: "client.reconnect_storm", severity: .warn, docs: "https://socket.io/docs/v4/client-options/#reconnectiondelay")
    public static let ackUnanswered = Entry(code: "ack.unanswered", severity: .warn, docs: "https://socket.io/docs/v4/emitting-events/#acknowledgements")

    public static let all: [Entry] = [
        stickySessionUnknown, upgradeRefused, upgradeHeadersLost, transportNeverUpgraded, versionMismatch, heartbeatIntermediaryTimeout,
        heartbeatPingTimeout, payloadTooLarge, corsOriginRefused, tokenExpired, tokenNotYetValid, tokenBadSignature, tokenMissing,
        connectRefused, namespaceUnknown, reconnectStorm, ackUnanswered,
    ]
}
