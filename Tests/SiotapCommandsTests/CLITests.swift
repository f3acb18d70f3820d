import Crypto
import Glibc
import Testing
@testable import SiotapCommands
import JWTInspection
import Foundation
import TrafficCapture
import TrafficReplay

/// Runs `siotap` in-process with captured output.
func siotap(_ arguments: [String], stdin: [String]? = nil, colors: Bool = false, terminal: Bool? = nil) async -> (code: Int32, out: String, err: String) {
    let capture = CommandIO.Capture()
    let code = await CommandIO.$current.withValue(capture.io(stdin: stdin, colors: colors, terminal: terminal)) {
        await SiotapCLI.run(arguments)
    }
    return (code, capture.output, capture.errorOutput)
}

@Suite("siotap decode")
struct DecodeCommandTests {
    @Test("Frames become JSONL records when piped")
    func jsonl() async throws {
        let result = await siotap(["decode", #"42["chat message","hi"]"#, #"451-["up",{"_placeholder":true,"num":0}]"#, "base64:AQID"])
        #expect(result.code == 0)
        let lines = result.out.split(separator: "\n").map(String.init)
        #expect(lines.count == 2)
        let records = try lines.map { try CaptureRecord(jsonLine: $0) }
        #expect(records.map(\.seq) == [1, 2])
        guard case .packet(let event) = records[0].body, case .packet(let binary) = records[1].body else {
            Issue.record("expected packets")
            return
        }
        #expect(event.event == "chat message")
        #expect(binary.attachments == ["AQID"])
    }

    @Test("Polling bodies with \\x escapes, v3 and v4")
    func polling() async throws {
        let v4 = await siotap(["decode", "--transport", "polling", #"4hello\x1ebAQIDBA=="#])
        #expect(v4.code == 2)  // "hello" is not a Socket.IO packet: an error record, exit 2
        #expect(v4.out.contains(#""kind":"error""#))
        let ok = await siotap(["decode", "--transport", "polling", #"42["a"]\x1e2\x1e3probe"#])
        #expect(ok.code == 0)
        #expect(ok.out.split(separator: "\n").count == 3)
        let v3 = await siotap(["decode", "--eio", "3", "--transport", "polling", "--dir", "s2c", #"7:42["a"]1:2"#])
        #expect(v3.code == 0)
        #expect(v3.out.contains(#""dir":"s2c","transport":"polling","type":"EVENT""#))
        let xhr2 = await siotap(["decode", "--eio", "3", "--transport", "polling", "hex:00 06 FF 34 68 65 6C 6C 6F"])
        #expect(xhr2.out.contains("\"kind\":\"error\""))  // "hello" again: decoded, then refused by Socket.IO
    }

    @Test("Frames from standard input, one per line")
    func stdin() async {
        let result = await siotap(["decode"], stdin: [#"40{"token":"abc"}"#, "", #"42["x"]"#])
        #expect(result.code == 0)
        #expect(result.out.split(separator: "\n").count == 2)
    }

    @Test("Malformed frames exit 2 and still print every record")
    func malformed() async {
        let result = await siotap(["decode", "4abc", #"42["ok"]"#])
        #expect(result.code == 2)
        #expect(result.out.contains("socketio.unknown_packet_type"))
        #expect(result.out.contains(#""event":"ok""#))
    }

    @Test("A token in CONNECT is inspected and verified with --jwt-secret")
    func tokens() async throws {
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJpZCI6NDJ9.5B0b5V0Bc2xKb8E3L1mOQv2HnJ2F9aYhP4w9V2d0kIM"
        let result = await siotap(["decode", "--jwt-secret", "k", #"40{"token":""# + token + #""}"#])
        #expect(result.out.contains(#""kind":"jwt","source":"auth.token""#))
        #expect(result.out.contains(#""verified":false"#))
        #expect(result.out.contains("bad signature"))
    }

    @Test("A binary packet still waiting for attachments is reported, exit 1; two attachments later it is whole")
    func incompleteBinary() async throws {
        let waiting = await siotap(["decode", #"452-["up",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#, "base64:AQ=="])
        #expect(waiting.code == 1)
        let record = try CaptureRecord(jsonLine: String(waiting.out.split(separator: "\n").last ?? ""))
        guard case .error(let error) = record.body else {
            Issue.record("expected an error record, got \(waiting.out)")
            return
        }
        #expect(error.code == "socketio.incomplete")
        #expect(error.message == "incomplete: BINARY_EVENT waits for 1 attachment")
        let whole = await siotap(["decode", #"452-["up",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#, "base64:AQ==", "base64:Ag=="])
        #expect(whole.code == 0)
        #expect(!whole.out.contains("incomplete"))
    }

    @Test("A placeholder beyond the announced attachments is refused at once, as the reference parser refuses it")
    func placeholderOutOfRange() async throws {
        for frame in [#"451-["x",{"_placeholder":true,"num":3}]"#, #"451-["x",{"_placeholder":true,"num":-1}]"#, #"451-["x",{"_placeholder":true,"num":1}]"#] {
            let result = await siotap(["decode", frame])
            #expect(result.code == 2, "\(frame)")
            #expect(result.out.contains(#""code":"socketio.illegal_placeholder""#), "\(frame)")
            #expect(!result.out.contains("incomplete"), "\(frame)")
        }
    }

    @Test("Usage errors exit 2 with a message")
    func usage() async {
        #expect(await siotap(["decode", "--eio", "5", "x"]).code == 2)
        #expect(await siotap(["decode"]).code == 2)  // nothing given, nothing piped
        #expect(await siotap(["decode", "base64:***"]).code == 2)
        #expect(await siotap(["decode", "--jwt-secret", "a", "--jwks", "b", "42[\"x\"]"]).code == 2)
        #expect(await siotap(["nonsense"]).code == 2)
        let result = await siotap(["decode", "--transport", "carrier-pigeon", "x"])
        #expect(result.code == 2)
        #expect(result.err.contains("carrier-pigeon"))
    }

    @Test("A terminal gets readable colored lines; NO_COLOR-style plain output has none")
    func readable() async {
        let colored = await siotap(["decode", #"42/chat,3["message",{"text":"hi"}]"#], colors: true)
        #expect(colored.code == 0)
        #expect(colored.out.contains("\u{1B}["))
        #expect(colored.out.contains("message"))
        #expect(colored.out.contains("/chat"))
        #expect(!colored.out.contains("\"kind\""))
        let forcedJSON = await siotap(["decode", "--json", #"42["m"]"#], colors: true)
        #expect(forcedJSON.out.hasPrefix("{\"seq\":1"))
        #expect(!forcedJSON.out.contains("\u{1B}["))
        // The same records but for their times.
        let untimed = { (text: String) in text.replacing(/"ts":"[^"]*"/, with: "") }
        #expect(untimed(await siotap(["decode", "--format", "json", #"42["m"]"#], colors: true).out) == untimed(forcedJSON.out))
    }

    @Test("--format chooses; without it a terminal gets text (without colors under NO_COLOR) and a pipe gets JSON lines")
    func format() async {
        let frame = #"42["m",1]"#
        let piped = await siotap(["decode", frame])
        #expect(piped.out.hasPrefix("{\"seq\":1"))
        let text = await siotap(["decode", "--format", "text", frame])
        #expect(text.code == 0 && text.out.contains("→ websocket m [1]") && !text.out.contains("{\"seq\"") && !text.out.contains("\u{1B}["), "\(text.out)")
        let noColor = await siotap(["decode", frame], colors: false, terminal: true)
        #expect(noColor.out.dropFirst(12) == text.out.dropFirst(12), "the same line but for its time")
        #expect(await siotap(["decode", "--json", "--format", "text", frame]).code == 2)
        let help = await siotap(["proxy", "--help"])
        #expect(help.out.contains("--format") && help.out.contains("json when piped or redirected"))
    }

    @Test("--help shows examples")
    func help() async {
        let result = await siotap(["decode", "--help"])
        #expect(result.code == 0)
        #expect(result.out.contains("Examples:"))
        #expect(result.out.contains("siotap decode --transport polling"))
        #expect(await siotap(["--help"]).out.contains("decode"))
        #expect(await siotap(["--version"]).out.contains(SiotapVersion.current))
    }
}

@Suite("siotap jwt")
struct JWTCommandTests {
    @Test("Exit 0 without a key, 0 verified, 1 refused, 2 malformed")
    func exitCodes() async throws {
        let token = try Self.token()
        #expect(await siotap(["jwt", token]).code == 0)
        #expect(await siotap(["jwt", token, "--secret", "your-secret-key"]).code == 0)
        #expect(await siotap(["jwt", token, "--secret", "nope"]).code == 1)
        #expect(await siotap(["jwt", "not-a-token"]).code == 2)
        #expect(await siotap(["jwt", token, "--key", "/nonexistent.pem"]).code == 2)
    }

    @Test("JSON report with the verdict, the reason and the times")
    func json() async throws {
        let result = await siotap(["jwt", try Self.token(), "--secret", "nope"])
        let report = try JSONValue.parse(result.out)
        #expect(report["verified"] == .bool(false))
        #expect(report["reason_code"]?.stringValue == "bad_signature")
        #expect(report["exp"]?.stringValue == "2100-01-01T00:00:00Z")
        #expect(report["claims"]?["sub"]?.stringValue == "42")
        let unverified = try JSONValue.parse(await siotap(["jwt", try Self.token()]).out)
        #expect(unverified["verified"] == .null)
    }

    @Test("Readable on a terminal; token from stdin with a Bearer prefix")
    func readable() async throws {
        let result = await siotap(["jwt", "-", "--secret", "your-secret-key"], stdin: ["Bearer " + (try Self.token())], colors: true)
        #expect(result.code == 0)
        #expect(result.out.contains("verified"))
        #expect(result.out.contains("2100-01-01T00:00:00Z"))
        #expect(await siotap(["jwt", "--help"]).out.contains("Examples:"))
    }

    /// Minted here so the test does not depend on a hard-coded signature.
    static func token() throws -> String {
        let header = Base64.encodeURL(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
        let claims = Base64.encodeURL(Array(#"{"sub":"42","exp":4102444800}"#.utf8))
        let input = header + "." + claims
        return input + "." + Base64.encodeURL(Array(HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: Array("your-secret-key".utf8)))))
    }
}

@Suite("siotap proxy's view and filter")
struct ProxyViewTests {
    static let event = CaptureRecord(
        seq: 3, ts: "2026-11-27T08:45:02.123456Z", conn: "c2",
        .packet(PacketRecord(dir: .serverToClient, transport: .websocket, type: .ack, nsp: "/admin", id: 7,
                             args: [.string(String(repeating: "long ", count: 60))], raw: "x", latencyMilliseconds: 1.5))
    )

    @Test("A packet line: time, conn, arrow, transport, namespace, type, shortened args, latency")
    func line() {
        let line = RecordView(style: Styling(enabled: false), width: 80).line(Self.event)
        #expect(line.hasPrefix("08:45:02.123 [c2] ← websocket /admin ACK #7 (1.5 ms) [\"long long"))
        #expect(line.hasSuffix("…"))
        #expect(line.count <= 80)
        let colored = RecordView(style: Styling(enabled: true), width: 80).line(Self.event)
        #expect(colored.contains("\u{1B}[34m←"))
    }

    @Test("A JWT line names the claims it shows: the user's name with the claim that identifies them, the expiry and the verdict")
    func jwtLine() {
        func line(_ claims: JSONValue) -> String {
            let record = CaptureRecord(seq: 1, ts: "2026-11-27T08:45:02.123456Z", conn: "c1", .jwt(JWTRecord(
                source: "auth.token", header: .object(["alg": "HS256"]), claims: claims, verified: false,
                reason: "expired at 2026-11-27T08:00:00Z", exp: "2026-11-27T08:00:00Z", expiresInSeconds: -2702)))
            return RecordView(style: Styling(enabled: false), width: 200).line(record)
        }
        #expect(line(.object(["id": 42])).contains("JWT auth.token id=42 exp 2026-11-27T08:00:00Z (expired 45m02s ago) ✗ expired at"))
        #expect(line(.object(["id": 42, "name": "ada"])).contains("JWT auth.token ada (id 42) exp"))
        #expect(line(.object(["sub": "42", "name": "ada", "id": 7])).contains("JWT auth.token ada (sub 42) exp"))
        #expect(line(.object(["scope": "chat"])).contains("JWT auth.token exp"))
    }

    @Test("An ack names the event it answers; event=X keeps X's acks; a line never wraps, whatever the width")
    func ackNamesItsEvent() throws {
        let asked = CaptureRecord(seq: 2, ts: "2026-11-27T08:45:02.120000Z", conn: "c2",
                                  .packet(PacketRecord(dir: .clientToServer, transport: .websocket, type: .event, nsp: "/admin", id: 7,
                                                       event: "ping_me", args: [], raw: "x")))
        let acks = AckEvents()
        #expect(acks.take(asked) == nil)
        let answering = acks.take(Self.event)
        #expect(answering == "ping_me")
        #expect(acks.take(Self.event) == nil, "an ack answers once")
        let line = RecordView(style: Styling(enabled: false), width: 80).line(Self.event, answering: answering)
        #expect(line.hasPrefix("08:45:02.123 [c2] ← websocket /admin ACK #7 ping_me (1.5 ms) [\"long"), "\(line)")
        let filter = try CaptureFilter("event=ping_me")
        #expect(filter.matches(asked) && filter.matches(Self.event, answering: answering) && !filter.matches(Self.event))
        for width in [20, 40, 80, 120] {
            for styled in [false, true] {
                let cut = RecordView(style: Styling(enabled: styled), width: width).line(Self.event, answering: answering)
                let visible = cut.replacing(/\x1B\[[0-9;]*m/, with: "")
                #expect(visible.count == width && visible.hasSuffix("…"), "\(width): \(visible)")
            }
        }
        // An event never answered is forgotten past the capacity: memory stays bounded.
        let small = AckEvents(capacity: 3)
        for id in 0..<10_000 {
            small.take(CaptureRecord(seq: id, ts: "", conn: "c1", .packet(PacketRecord(
                dir: .clientToServer, transport: .websocket, type: .event, nsp: "/", id: UInt64(id), event: "e\(id)", args: [], raw: "x"))))
        }
        let late = { (id: Int) in CaptureRecord(seq: 0, ts: "", conn: "c1", .packet(PacketRecord(
            dir: .serverToClient, transport: .websocket, type: .ack, nsp: "/", id: UInt64(id), args: [], raw: "x"))) }
        #expect(small.take(late(9_999)) == "e9999" && small.take(late(0)) == nil)
        #expect(small.waiting <= 3 && small.remembered <= 7)
        // A name past the bound is not kept: its ack shows unnamed.
        let long = String(repeating: "n", count: AckEvents.longestName + 1)
        small.take(CaptureRecord(seq: 0, ts: "", conn: "c9", .packet(PacketRecord(
            dir: .clientToServer, transport: .websocket, type: .event, nsp: "/", id: 1, event: long, args: [], raw: "x"))))
        #expect(small.take(CaptureRecord(seq: 0, ts: "", conn: "c9", .packet(PacketRecord(
            dir: .serverToClient, transport: .websocket, type: .ack, nsp: "/", id: 1, args: [], raw: "x")))) == nil)
    }

    @Test("A fault line: the action, its packet, the delay or what went instead, and the rule")
    func faultLine() {
        let record = CaptureRecord(seq: 9, ts: "2026-11-27T08:45:02.123456Z", conn: "c1", .fault(FaultRecord(
            rule: "delay=300ms,event=chat", action: .delay, dir: .serverToClient, packet: 8, delayMilliseconds: 300)))
        let line = RecordView(style: Styling(enabled: false), width: 200).line(record)
        #expect(line == "08:45:02.123 [c1] ← fault delay #8 300 ms (delay=300ms,event=chat)")
    }

    @Test("--fault rules are read before anything starts; a bad one is a usage error")
    func faultOptions() async throws {
        let bad = await siotap(["proxy", "--fault", "drop,colour=red"])
        #expect(bad.code == 2)
        #expect(bad.err.contains("--fault 'drop,colour=red': unknown term colour"))
        #expect(bad.err.contains("Usage: siotap proxy") && !bad.err.contains("SUBCOMMANDS"), "the proxy's usage, not the top level's")
        let seedAlone = await siotap(["proxy", "--seed", "3"])
        #expect(seedAlone.err.contains("--seed goes with --fault"))
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("siotap-faults-\(getpid()).json")
        try Data(#"["drop", {"not": "a rule"}]"#.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let badFile = await siotap(["proxy", "--faults", file.path])
        #expect(badFile.err.contains("each rule is a string"))
    }

    @Test("Filters keep packets matching every term")
    func filter() throws {
        #expect(try CaptureFilter("nsp=/admin,dir=s2c,type=ack").matches(Self.event))
        #expect(try !CaptureFilter("conn=c1").matches(Self.event))
        #expect(try !CaptureFilter("chat message").matches(Self.event))
        #expect(CaptureFilter().matches(Self.event))
        #expect(throws: (any Error).self) { try CaptureFilter("colour=red") }
    }

    @Test("proxy --help has examples; a bad upstream, address or filter is a usage error, said when parsing")
    func help() async {
        #expect(await siotap(["proxy", "--help"]).out.contains("siotap proxy --upstream http://localhost:3001"))
        let ftp = await siotap(["proxy", "--upstream", "ftp://example.com"])
        #expect(ftp.code == 2)
        #expect(ftp.err.contains("'ftp://example.com'") && ftp.err.contains("wants http://HOST:PORT or https://HOST:PORT"))
        let plainWithCA = await siotap(["proxy", "--upstream", "http://127.0.0.1:1", "--insecure"])
        #expect(plainWithCA.code == 2 && plainWithCA.err.contains("--insecure are for an https:// upstream"))
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("fixtures/chat-polling.jsonl").path
        // Replay speaks https; nothing listens there: unreachable, its own exit code.
        let replayHTTPS = await siotap(["replay", fixture, "--target", "https://127.0.0.1:1"])
        #expect(replayHTTPS.code == 3 && replayHTTPS.err.contains("could not reach https://127.0.0.1:1"), "\(replayHTTPS.err)")
        #expect(await siotap(["bench", "--target", "https://127.0.0.1:1"]).err.contains("https is supported by siotap proxy and siotap replay only"))
        let listen = await siotap(["serve", "--listen", "nowhere"])
        #expect(listen.code == 2 && listen.err.contains("wants HOST:PORT"))
        #expect(await siotap(["proxy", "--filter", "colour=red"]).err.contains("unknown key colour"))
        #expect(await siotap(["bench", "--target", "ftp://x"]).code == 2)
        let help = await siotap(["proxy", "--help"]).out.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(help.contains("(default: http://127.0.0.1:3000; not with --mode forward)"))
        #expect(help.contains("siotap proxy --mode forward --listen 127.0.0.1:8080"))
    }

    @Test("Forward mode's options: what goes with which mode, and patterns that must compile (all refused before listening)")
    func forwardOptions() async {
        let withUpstream = await siotap(["proxy", "--mode", "forward", "--upstream", "http://127.0.0.1:1"])
        #expect(withUpstream.code == 2 && withUpstream.err.contains("--upstream is for --mode reverse"), "\(withUpstream.err)")
        let withTLS = await siotap(["proxy", "--mode", "forward", "--tls", "auto"])
        #expect(withTLS.code == 2 && withTLS.err.contains("--tls is for --mode reverse"))
        let reverseIgnoring = await siotap(["proxy", "--ignore-hosts", "x"])
        #expect(reverseIgnoring.code == 2 && reverseIgnoring.err.contains("are for --mode forward"))
        let badPattern = await siotap(["proxy", "--mode", "forward", "--ignore-hosts", "(unclosed"])
        #expect(badPattern.code == 2 && badPattern.err.contains("'(unclosed' is not a regular expression"))
        #expect(await siotap(["proxy", "--mode", "sideways"]).code == 2)
    }

    @Test("import: --help has examples; a file that is no capture is exit 2 in one line, a missing one exit 1")
    func importRefusals() async throws {
        #expect(await siotap(["import", "--help"]).out.contains("siotap import session.pcap --record session.jsonl"))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("siotap-not-a-capture-\(UUID().uuidString).txt").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "not a capture\n".write(toFile: path, atomically: true, encoding: .utf8)
        let notCapture = await siotap(["import", path])
        #expect(notCapture.code == 2 && notCapture.err.split(separator: "\n").count == 1, "\(notCapture.err)")
        #expect(await siotap(["import", path + ".missing"]).code == 1)
        #expect(await siotap(["import", path, "--port", "0"]).code == 2)
    }

    @Test("--ignore-hosts and --allow-hosts match host or host:port; ignoring wins")
    func hostPatterns() throws {
        let everything = try HostPatterns(ignore: [], allow: []).intercepts
        #expect(everything("example.com", 443))
        let ignoring = try HostPatterns(ignore: [#"\.googleapis\.com$"#, "^127\\.0\\.0\\.1:8443$"], allow: []).intercepts
        #expect(!ignoring("fonts.googleapis.com", 443))
        #expect(!ignoring("127.0.0.1", 8443))
        #expect(ignoring("127.0.0.1", 443))
        #expect(ignoring("example.com", 443))
        let allowing = try HostPatterns(ignore: ["^admin\\."], allow: [#"example\.com"#]).intercepts
        #expect(allowing("api.example.com", 443))
        #expect(!allowing("admin.example.com", 443), "ignoring wins")
        #expect(!allowing("other.org", 443))
    }
}

@Suite("siotap demo")
struct DemoCommandTests {
    @Test("The story plays through the proxy and lands in the capture, decoded")
    func story() async throws {
        let path = "/tmp/siotap-demo-test-\(UInt64.random(in: 0...UInt64.max)).jsonl"
        defer { unlink(path) }
        let result = await siotap(["demo", "--record", path])
        #expect(result.code == 0)
        #expect(result.err.contains("proxy on http://127.0.0.1:"))
        let (records, problems) = try CaptureReader.readAll(path: path)
        #expect(problems.isEmpty)
        #expect(result.out.split(separator: "\n").count == records.count)  // the live view printed each one
        let packets = records.compactMap { record -> PacketRecord? in
            if case .packet(let packet) = record.body { packet } else { nil }
        }
        let events = packets.compactMap(\.event)
        for expected in ["user connection", "message", "chat response", "joinRoom", "roomJoined", "notify", "notification", "user disconnected"] {
            #expect(events.contains(expected), "\(expected) missing")
        }
        let verdicts = records.compactMap { record -> Bool?? in
            if case .jwt(let jwt) = record.body { jwt.verified } else { nil }
        }
        #expect(verdicts.sorted { ($0 ?? false) && !($1 ?? false) } == [true, true, false])
        #expect(packets.contains { $0.type == .connectError })
        #expect(Set(records.compactMap(\.conn)) == ["c1", "c2", "c3"])
        #expect(records.filter { $0.kind == .close }.count == 3)
    }
}

@Suite("siotap redact")
struct RedactCommandTests {
    @Test("Redacts a capture file and says what it removed")
    func redactFile() async throws {
        let input = "/tmp/siotap-redact-in-\(UInt64.random(in: 0...UInt64.max)).jsonl"
        let output = input.replacingOccurrences(of: "-in-", with: "-out-")
        defer {
            unlink(input)
            unlink(output)
        }
        let token = JWTMinter.hmac(claims: .object(["sub": "u"]), secret: "k")
        let writer = try CaptureWriter(path: input)
        try writer.write(.packet(PacketRecord(dir: .clientToServer, transport: .websocket, type: .connect, nsp: "/",
                                              data: .object(["token": .string(token), "pw": "hunter2"]),
                                              raw: #"0{"token":""# + token + #"","pw":"hunter2"}"#)), conn: "c1")
        writer.close()
        let result = await siotap(["redact", input, "-o", output, "--secret", "hunter2"])
        #expect(result.code == 0)
        #expect(result.err.contains("2 token signatures, 0 headers, 2 secrets removed"))  // each counted where it stands: data and raw
        let (records, problems) = try CaptureReader.readAll(path: output)
        #expect(problems.isEmpty)
        #expect(records.count == 1)
        #expect(!records[0].jsonLine.contains("hunter2"))
        #expect(!records[0].jsonLine.contains(token))
        #expect(await siotap(["redact", input, "-o", input]).code == 2)
        #expect(await siotap(["redact", "/nonexistent.jsonl", "-o", output]).code == 2)
    }
}

@Suite("siotap replay", .serialized)
struct ReplayCommandTests {
    static let secret = "siotap-demo-secret-0123456789abcdef"

    @Test("A demo capture replays against the built-in server with no difference; a changed reply is named; another server's capture asks for --target; an unreachable target is exit 3")
    func replayDemo() async throws {
        let path = "/tmp/siotap-replay-\(UInt64.random(in: 0...UInt64.max)).jsonl"
        let changed = path.replacingOccurrences(of: ".jsonl", with: "-changed.jsonl")
        defer {
            unlink(path)
            unlink(changed)
        }
        #expect(await siotap(["demo", "--record", path]).code == 0)
        let same = await siotap(["replay", path, "--jwt-secret", Self.secret])
        #expect(same.code == 0, "\(same.out)")
        #expect(same.out.contains("replay: no differences"))

        let text = try String(contentsOfFile: path, encoding: .utf8)
        try text.replacingOccurrences(of: #""args":["You sent: Hello from the demo"]"#, with: #""args":["You sent: something else"]"#)
            .write(toFile: changed, atomically: true, encoding: .utf8)
        let differs = await siotap(["replay", changed, "--jwt-secret", Self.secret, "--json"])
        #expect(differs.code == 1)
        let report = try JSONValue.parse(differs.out)
        #expect(report["equal"] == .bool(false))
        let changes = report["connections"]?.arrayValue?.flatMap { $0["changed"]?.arrayValue ?? [] } ?? []
        #expect(changes.count == 1)
        #expect(changes.first?["key"]?.stringValue == "EVENT / chat response")
        #expect(changes.first?["path"]?.stringValue == "args[0]")
        #expect(changes.first?["expected"]?.stringValue == "You sent: something else")
        #expect(changes.first?["actual"]?.stringValue == "You sent: Hello from the demo")
        let junitPath = changed + ".xml"
        defer { unlink(junitPath) }
        #expect(await siotap(["replay", changed, "--jwt-secret", Self.secret, "--junit", junitPath]).code == 1)
        let junit = try String(contentsOfFile: junitPath, encoding: .utf8)
        #expect(junit.contains(#"<testsuite name="siotap replay"#))
        #expect(junit.contains(#"tests="3" failures="1""#))
        #expect(junit.contains(#"<failure message="0 missing, 0 unexpected, 1 changed">"#))
        #expect(junit.contains("expected: &quot;You sent: something else&quot;"))
        // The user's ignore rule hides exactly that.
        #expect(await siotap(["replay", changed, "--jwt-secret", Self.secret, "--ignore", "args[0]"]).code == 0)
        #expect(await siotap(["replay", "/nonexistent.jsonl"]).code == 2)
        // The help says what replay does: the recorded transports, not "over WebSocket" only.
        let help = await siotap(["replay", "--help"]).out.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(help.contains("over the transports it was recorded on: WebSocket, polling, or polling then the upgrade"), "\(help)")
        // A capture of another server is not replayed against the built-in one unasked: its
        // sessions name no app (the demo's name chat).
        let elsewhere = changed.replacingOccurrences(of: ".jsonl", with: "-elsewhere.jsonl")
        defer { unlink(elsewhere) }
        try String(contentsOfFile: changed, encoding: .utf8).replacingOccurrences(of: #","app":"chat""#, with: "")
            .write(toFile: elsewhere, atomically: true, encoding: .utf8)
        let unasked = await siotap(["replay", elsewhere, "--jwt-secret", Self.secret])
        #expect(unasked.code == 2 && unasked.err.contains("--target URL") && unasked.err.contains("--app chat|conformance"), "\(unasked.err)")
        #expect(await siotap(["replay", elsewhere, "--jwt-secret", Self.secret, "--app", "chat", "--ignore", "args[0]"]).code == 0)
        #expect(await siotap(["replay", elsewhere, "--app", "chat", "--target", "http://127.0.0.1:1"]).code == 2)
        let down = await siotap(["replay", elsewhere, "--target", "http://127.0.0.1:1"])
        #expect(down.code == 3 && down.err.contains("could not reach http://127.0.0.1:1") && !down.out.contains("differences"), "\(down)")
    }

    @Test("A changed ack is named by the event it answers, without stray spaces")
    func ackLabels() async throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("fixtures/conformance-binary.jsonl").path
        let changed = "/tmp/siotap-acks-\(UInt64.random(in: 0...UInt64.max)).jsonl"
        defer { unlink(changed) }
        let text = try String(contentsOfFile: fixture, encoding: .utf8)
        let edited = text.replacingOccurrences(of: #""type":"ACK","nsp":"/custom","id":1,"args":["custom"]"#, with: #""type":"ACK","nsp":"/custom","id":1,"args":["other"]"#)
        #expect(edited != text)
        try edited.write(toFile: changed, atomically: true, encoding: .utf8)
        let report = await siotap(["replay", changed, "--app", "conformance"])
        #expect(report.code == 1)
        #expect(report.out.contains("changed #") && report.out.contains(" ACK /custom message-with-ack at args[0]"), "\(report.out)")
        #expect(!report.out.contains("  at "))
    }

    @Test("A redacted capture replays once its tokens are re-minted; the forged one stays refused")
    func redactedReplay() async throws {
        let path = "/tmp/siotap-remint-\(UInt64.random(in: 0...UInt64.max)).jsonl"
        let redacted = path.replacingOccurrences(of: ".jsonl", with: "-redacted.jsonl")
        defer {
            unlink(path)
            unlink(redacted)
        }
        #expect(await siotap(["demo", "--record", path]).code == 0)
        #expect(await siotap(["redact", path, "-o", redacted, "--secret", Self.secret]).code == 0)
        // The built-in chat app gets its secret from the environment: the tokens stay unsigned.
        let unsigned = await CommandIO.$current.withValue(CommandIO.Capture().io(environment: ["JWT_SECRET": Self.secret])) {
            await SiotapCLI.run(["replay", redacted, "--timeout-ms", "500"])
        }
        #expect(unsigned == 1)
        let reminted = await siotap(["replay", redacted, "--jwt-secret", Self.secret])
        #expect(reminted.code == 0, "\(reminted.out)")
    }
}

@Suite("Re-minting tokens")
struct TokenRefresherTests {
    @Test("Valid then, valid now; expired then, expired now; bad stays bad")
    func refresh() async throws {
        let secret = "s3cret-of-enough-length-for-hs256!"
        let recordedAt = 1_700_000_000.0
        let refresher = TokenRefresher(secret: secret, now: recordedAt + 7_200)
        let valid = JWTMinter.hmac(claims: .object(["id": 1, "iat": .number(1_700_000_000), "exp": .number(1_700_003_600)]), secret: secret)
        let expired = JWTMinter.hmac(claims: .object(["id": 2, "exp": .number(1_699_999_990)]), secret: secret)
        let forged = JWTMinter.hmac(claims: .object(["id": 3, "exp": .number(1_700_003_600)]), secret: "other")
        let inspector = JWTInspector(key: .secret(secret))
        let now = recordedAt + 7_200
        #expect(await inspector.inspect(valid, now: now).failure?.code == .expired)  // as captured, it would fail now
        let fresh = await refresher.refresh(valid, recordedAt: recordedAt, signatureWasGood: nil)
        let report = await inspector.inspect(fresh, now: now)
        #expect(report.verified == true)
        #expect(report.claims["exp"]?.numberValue?.literal == "1700010800")
        #expect(report.claims["iat"]?.numberValue?.literal == "1700007200")
        #expect(report.claims["id"] == .number(1))
        let stillExpired = await refresher.refresh(expired, recordedAt: recordedAt, signatureWasGood: nil)
        #expect(await inspector.inspect(stillExpired, now: now).failure?.code == .expired)
        let stillForged = await refresher.refresh(forged, recordedAt: recordedAt, signatureWasGood: nil)
        #expect(await inspector.inspect(stillForged, now: now).failure?.code == .badSignature)
        let unsigned = String(valid[...valid.lastIndex(of: ".")!])
        #expect(await inspector.inspect(await refresher.refresh(unsigned, recordedAt: recordedAt, signatureWasGood: nil), now: now).verified == true)
    }

    @Test("A re-minted iat is never ahead of now (PyJWT refuses a token issued in the future)")
    func issuedInThePast() async throws {
        // Minted at 1000, seen at 1000.3, replayed at 2000.9: 1000.6 s later, and the token's iat
        // must not pass 2000.9 (rounding the shift would make it 2001).
        let token = JWTMinter.hmac(claims: .object(["iat": 1000, "exp": 4600]), secret: "k")
        let fresh = await TokenRefresher(secret: "k", now: 2000.9).refresh(token, recordedAt: 1000.3, signatureWasGood: true)
        let claims = try #require(JWTText.parts(of: fresh)?.claims)
        #expect(claims["iat"]?.numberValue?.literal == "2000")
        #expect(claims["exp"]?.numberValue?.literal == "5600")
    }
}

@Suite("Comparing packets")
struct PacketNormalizerTests {
    @Test("sids, pids and re-minted tokens compare equal; ignore paths drop what they name")
    func normalize() throws {
        let old = JWTMinter.hmac(claims: .object(["id": 1, "exp": 100]), secret: "a")
        let new = JWTMinter.hmac(claims: .object(["id": 1, "exp": 900]), secret: "b")
        let other = JWTMinter.hmac(claims: .object(["id": 2, "exp": 100]), secret: "a")
        let normalizer = PacketNormalizer(ignoredPaths: ["args[0].at", "*.id"])
        func event(_ args: [JSONValue]) -> PacketRecord { PacketRecord(dir: .serverToClient, transport: .websocket, type: .event, nsp: "/", event: "e", args: args, raw: "") }
        #expect(normalizer.normalize(event([.object(["token": .string(old)])])) == normalizer.normalize(event([.object(["token": .string(new)])])))
        #expect(normalizer.normalize(event([.string(old)])) != normalizer.normalize(event([.string(other)])))
        #expect(normalizer.normalize(event([.object(["at": 1, "x": 2])])) == normalizer.normalize(event([.object(["at": 5, "x": 2])])))
        #expect(normalizer.normalize(event([.object(["deep": .object(["id": 1])])])) == normalizer.normalize(event([.object(["deep": .object(["id": 9])])])))
        let connect = { (sid: String) in PacketRecord(dir: .serverToClient, transport: .websocket, type: .connect, nsp: "/", data: .object(["sid": .string(sid)]), raw: "") }
        #expect(normalizer.normalize(connect("a")) == normalizer.normalize(connect("b")))
        let diff = ConnectionDiff.compare(conn: "c1", expected: [(1, event([try JSONValue.parse("1.0")]))], actual: [event([1])], normalizer: PacketNormalizer())
        #expect(diff.isEqual)  // 1.0 and 1 are the same number
    }
}

@Suite("siotap bench")
struct BenchCommandTests {
    @Test("Round trips over both transports, with and without acks, all completed", arguments: [
        ["--transport", "websocket"], ["--transport", "polling", "--ack"],
    ])
    func smallRun(arguments: [String]) async throws {
        let result = await siotap(["bench", "--clients", "3", "--messages", "20", "--size", "64", "--json"] + arguments)
        #expect(result.code == 0, "\(result.err)")
        let report = try JSONValue.parse(result.out)
        #expect(report["completed"] == .number(60))
        #expect(report["expected"] == .number(60))
        let p50 = try #require(report["latency_ms"]?["p50"]?.numberValue?.doubleValue)
        let p99 = try #require(report["latency_ms"]?["p99"]?.numberValue?.doubleValue)
        #expect(p50 > 0 && p50 <= p99)
        #expect(await siotap(["bench", "--clients", "0"]).code == 2)
    }

    // Pacing is a function, not a speed: unpaced, two clients do hundreds of round trips a
    // second here; paced at 10/s for 1.5 s they can do at most 2 × 16.
    @Test("--rate paces each client and --duration stops the run")
    func pacedTimedRun() async throws {
        let result = await siotap(["bench", "--clients", "2", "--rate", "10", "--duration", "1.5", "--json"])
        #expect(result.code == 0, "\(result.err)")
        let report = try JSONValue.parse(result.out)
        let completed = try #require(report["completed"]?.numberValue?.doubleValue)
        #expect(completed >= 4 && completed <= 32, "\(completed) round trips")
        #expect(report["expected"] == report["completed"])
        #expect(await siotap(["bench", "--rate", "0"]).code == 2)
        #expect(await siotap(["bench", "--duration", "-1"]).code == 2)
    }
}

@Suite("--ui with or without an address")
struct InspectorAddressTests {
    @Test("A bare --ui means 127.0.0.1:8081, wherever it stands; an address after it is kept")
    func bareUI() {
        let fill = InspectorOptions.addressingBareUI
        #expect(fill(["proxy", "--ui"]) == ["proxy", "--ui", "127.0.0.1:8081"])
        #expect(fill(["proxy", "--ui", "--json"]) == ["proxy", "--ui", "127.0.0.1:8081", "--json"])
        #expect(fill(["view", "--ui", "session.jsonl"]) == ["view", "--ui", "127.0.0.1:8081", "session.jsonl"])
        #expect(fill(["proxy", "--ui", "127.0.0.1:9000"]) == ["proxy", "--ui", "127.0.0.1:9000"])
        #expect(fill(["proxy", "--upstream", "http://localhost:3001"]) == ["proxy", "--upstream", "http://localhost:3001"])
    }
}
