import JWTInspection
import Testing
@testable import TrafficCapture

@Suite("Redacting captures")
struct CaptureRedactorTests {
    static let token = JWTMinter.hmac(claims: .object(["id": 42, "exp": 4_102_444_800]), secret: "top-secret-signing-key")

    static var records: [CaptureRecord] {
        [
            CaptureRecord(seq: 1, ts: "2026-11-27T08:45:02.000001Z", conn: "c1", .session(SessionRecord(
                url: "/socket.io/?EIO=4&transport=polling&token=\(token)", eio: .v4, transport: .polling,
                headers: .object(["Host": "h", "Authorization": .string("Bearer \(token)"), "cookie": "session=abc; theme=dark"])))),
            CaptureRecord(seq: 2, ts: "2026-11-27T08:45:02.000002Z", conn: "c1", .packet(PacketRecord(
                dir: .clientToServer, transport: .polling, type: .connect, nsp: "/", data: .object(["token": .string(token)]),
                raw: #"0{"token":""# + token + #""}"#))),
            CaptureRecord(seq: 3, ts: "2026-11-27T08:45:02.000003Z", conn: "c1", .packet(PacketRecord(
                dir: .clientToServer, transport: .polling, type: .event, nsp: "/", event: "login",
                args: ["api-key-123", "keep \"eyJ\" and www.example.com", try! JSONValue.parse("12345678901234567890")], raw: #"2["login","api-key-123","keep \"eyJ\" and www.example.com",12345678901234567890]"#))),
        ]
    }

    @Test("Signatures, auth headers and secrets go; everything else stays exactly")
    func redacts() throws {
        let redactor = CaptureRedactor(secrets: ["api-key-123"])
        var summary = CaptureRedactor.Summary()
        let redacted = try Self.records.map { try redactor.redact($0, summary: &summary) }
        let text = redacted.map(\.jsonLine).joined(separator: "\n")
        let unsigned = String(Self.token[...Self.token.lastIndex(of: ".")!])
        #expect(!text.contains(Self.token))
        #expect(!text.contains("api-key-123"))
        #expect(!text.contains("abc"))
        #expect(text.contains(unsigned + "\""))
        #expect([summary.records, summary.tokens, summary.headers, summary.secrets] == [3, 3, 2, 2])
        guard case .session(let session) = redacted[0].body, case .packet(let connect) = redacted[1].body,
            case .packet(let event) = redacted[2].body
        else { Issue.record("kinds changed"); return }
        #expect(session.headers?["Authorization"]?.stringValue == CaptureRedactor.placeholder)
        #expect(session.headers?["cookie"]?.stringValue == CaptureRedactor.placeholder)
        #expect(session.headers?["Host"]?.stringValue == "h")
        #expect(session.url.hasSuffix("token=" + unsigned))
        #expect(connect.data?["token"]?.stringValue == unsigned)
        #expect(connect.raw == #"0{"token":""# + unsigned + #""}"#)
        // The claims survive, so a replay can re-mint the token.
        #expect(JWTText.looksLikeJWT(unsigned + "x"))
        #expect(event.args?[1].stringValue == "keep \"eyJ\" and www.example.com")
        #expect(event.args?[2].jsonText == "12345678901234567890")
        #expect(redacted.map(\.seq) == [1, 2, 3])
        #expect(redacted.map(\.ts) == Self.records.map(\.ts))
    }

    @Test("A token's signature alone is dropped, never a look-alike")
    func lookAlikes() {
        var count = 0
        let redactor = CaptureRedactor()
        #expect(redactor.stripSignatures("eyJhbGciOiJub25lIn0.eyJ4IjoxfQ", count: &count) == "eyJhbGciOiJub25lIn0.eyJ4IjoxfQ")
        #expect(redactor.stripSignatures("xeyJhbGciOiJIUzI1NiJ9.eyJ4IjoxfQ.sig", count: &count) == "xeyJhbGciOiJIUzI1NiJ9.eyJ4IjoxfQ.sig")
        #expect(count == 0)
        #expect(redactor.stripSignatures("a eyJhbGciOiJIUzI1NiJ9.eyJ4IjoxfQ.sig b", count: &count) == "a eyJhbGciOiJIUzI1NiJ9.eyJ4IjoxfQ. b")
        #expect(count == 1)
    }
}
