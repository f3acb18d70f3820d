import FaultInjection
import SocketIOProtocol
import Testing
import TrafficCapture

@Suite struct FaultRuleTests {
    @Test func readsEveryAction() throws {
        #expect(try FaultRule("delay=300ms,jitter=50ms,event=chat").action == .delay(seconds: 0.3, jitter: 0.05))
        #expect(try FaultRule("drop,type=ACK,dir=s2c,p=50").action == .drop)
        #expect(try FaultRule("drop,type=ACK,dir=s2c,p=50").percent == 50)
        #expect(try FaultRule("disconnect=2s,how=reset").action == .disconnect(after: 2, how: .reset))
        #expect(try FaultRule("disconnect,event=logout").action == .disconnect(after: nil, how: .close))
        #expect(try FaultRule("throttle=10kB/s,dir=s2c").action == .throttle(bytesPerSecond: 10_000))
        #expect(try FaultRule("throttle=64KiB/s").action == .throttle(bytesPerSecond: 65_536))
        #expect(try FaultRule("drop,after=1.5s").after == 1.5)
    }

    @Test func aMessageAndAJSONValueMayHoldCommas() throws {
        let refusal = try FaultRule("refuse-connect=2,message=jwt expired, renew it,nsp=/admin")
        #expect(refusal.action == .refuseConnect(count: 2, message: "jwt expired, renew it"))
        #expect(refusal.filter.terms.map(\.value) == ["/admin"])
        // refuse-connect without nsp= is for the main namespace.
        #expect(try FaultRule("refuse-connect=1,message=x").filter.terms.map(\.value) == ["/"])
        let rewrite = try FaultRule(#"set=args[0].quote:{"price":0,"cur":"EUR"},event=quote"#)
        guard case .rewrite(let edits) = rewrite.action, case .set(let path, let value) = edits.first else {
            Issue.record("not a rewrite: \(rewrite.action)")
            return
        }
        #expect(path.description == "args[0].quote")
        #expect(value.jsonText == #"{"price":0,"cur":"EUR"}"#)
        #expect(rewrite.filter.terms.map(\.value) == ["quote"])
    }

    @Test(arguments: [
        ("", "empty"), ("explode", "not an action"), ("delay", "needs a duration"), ("delay=3", "a duration is"),
        ("drop,p=150", "percentage"), ("drop,colour=red", "unknown term"), ("throttle=10kB", "rate"),
        ("throttle=1kB/s,event=chat", "only dir= and conn="), ("disconnect=2s,event=chat", "timed"), ("drop,how=reset", "how goes with disconnect"),
        ("set=args[0]", "PATH:JSON"), ("set=args[0]:{nope", "not JSON"), ("set=body:1", "starts with args"), ("set=args.x:1", "args is a list"),
        ("event=chat,drop", "unknown term"),
        // Values that parse as numbers but no timer or index can hold.
        ("delay=1e10s", "at most a day"), ("delay=1e300s", "at most a day"), ("delay=1s,jitter=1e300s", "at most a day"),
        ("disconnect=1e300s", "at most a day"), ("drop,after=1e300s", "at most a day"), ("delay=1441m", "at most a day"),
        ("throttle=1e-300B/s", "between 1B/s"), ("throttle=0.5B/s", "between 1B/s"), ("throttle=1e300MB/s", "between 1B/s"),
        ("set=args[9223372036854775807]:1", "largest index"), ("unset=args[0][1000001]", "largest index"),
    ])
    func refusesWhatItCannotRead(spec: String, complaint: String) {
        #expect {
            try FaultRule(spec)
        } throws: { error in
            "\(error)".contains(complaint)
        }
    }

    @Test func theLargestValuesThatParseRunWithoutATrap() throws {
        for spec in ["delay=86400s", "delay=1s,jitter=1440m", "disconnect=1440m", "drop,after=86400s", "throttle=1B/s", "throttle=1000000MB/s"] {
            #expect(throws: Never.self) { try FaultRule(spec) }
        }
        var slow = ConnectionFaults(plan: FaultPlan(rules: [try FaultRule("throttle=1B/s")], seed: 1), conn: "c1", engineVersion: .v4, start: 0)
        // A thousand 64 MiB messages at a byte a second: the wait is as long as it is (the timer
        // that carries it is clamped: TimeAmountTests).
        var wait = 0.0
        for _ in 0..<1000 { wait = slow.throttle(bytes: 64 << 20, dir: .clientToServer, now: 0).delay }
        #expect(wait > 6e10 && wait.isFinite)
        // The largest index, on an event (its name counted in) and on an ack.
        var rewrites = ConnectionFaults(
            plan: FaultPlan(rules: [try FaultRule("set=args[1000000]:1"), try FaultRule("unset=args[1000000]")], seed: 1),
            conn: "c1", engineVersion: .v4, start: 0
        )
        var decoder = SocketIODecoder(version: .v5)
        for raw in [#"2["chat",1]"#, "31[1]"] {
            let record = PacketRecord(try #require(try decoder.decode(text: raw)), raw: raw, dir: .clientToServer, transport: .websocket)
            #expect(rewrites.decide(record, seq: 1, now: 1).replacement == nil, "nothing at that index: left as it was")
        }
    }

    @Test func aFaultsFileIsAnArrayOfRules() throws {
        #expect(try FaultPlan.specs(fromJSON: Array(#"["drop,type=ACK", "delay=1s"]"#.utf8)) == ["drop,type=ACK", "delay=1s"])
        #expect(throws: FaultRule.Invalid.self) { try FaultPlan.specs(fromJSON: Array(#"{"drop": true}"#.utf8)) }
        #expect(throws: FaultRule.Invalid.self) { try FaultPlan.specs(fromJSON: Array(#"[1]"#.utf8)) }
    }
}

@Suite struct FaultDecisionTests {
    func packet(_ raw: String, dir: Direction = .serverToClient, version: SocketIOVersion = .v5) throws -> PacketRecord {
        var decoder = SocketIODecoder(version: version)
        let decoded = try #require(try decoder.decode(text: raw))
        return PacketRecord(decoded, raw: raw, dir: dir, transport: .websocket)
    }

    func faults(_ specs: String..., seed: UInt64 = 1, version: EngineIOVersion = .v4) throws -> ConnectionFaults {
        ConnectionFaults(plan: FaultPlan(rules: try specs.map(FaultRule.init), seed: seed), conn: "c1", engineVersion: version, start: 1000)
    }

    @Test func dropsOnlyWhatMatches() throws {
        var conn = try faults("drop,type=ACK,dir=s2c")
        let ack = conn.decide(try packet("31[\"ok\"]"), seq: 7, now: 1001)
        #expect(ack.drop)
        #expect(ack.records == [FaultRecord(rule: "drop,type=ACK,dir=s2c", action: .drop, dir: .serverToClient, packet: 7)])
        let event = conn.decide(try packet("2[\"chat\",1]"), seq: 8, now: 1001)
        #expect(!event.drop && event.records.isEmpty && event.delay == 0)
        let fromClient = conn.decide(try packet("31[\"ok\"]", dir: .clientToServer), seq: 9, now: 1001)
        #expect(!fromClient.drop)
    }

    @Test func delaysKeepTheirOrder() throws {
        var conn = try faults("delay=300ms,event=slow")
        let slow = conn.decide(try packet("2[\"slow\"]"), seq: 1, now: 1000)
        #expect(abs(slow.delay - 0.3) < 1e-9)
        #expect(slow.records.first?.delayMilliseconds == 300)
        // A packet no rule holds still waits behind the one before it, without a record.
        let next = conn.decide(try packet("2[\"fast\"]"), seq: 2, now: 1000.1)
        #expect(abs(next.delay - 0.2) < 1e-9)
        #expect(next.records.isEmpty)
        // The other direction is not held.
        #expect(conn.decide(try packet("2[\"fast\"]", dir: .clientToServer), seq: 3, now: 1000.1).delay == 0)
        #expect(conn.decide(try packet("2[\"fast\"]"), seq: 4, now: 1000.5).delay == 0)
    }

    @Test func jitterStaysWithinItsBoundsAndTheSeedRepeatsIt() throws {
        func delays(seed: UInt64) throws -> [Double] {
            var conn = try faults("delay=100ms,jitter=50ms", seed: seed)
            return try (0..<50).map { index in conn.decide(try packet("2[\"e\"]"), seq: index, now: 1000 + Double(index)).delay }
        }
        let first = try delays(seed: 42)
        #expect(first.allSatisfy { $0 >= 0.05 - 1e-9 && $0 <= 0.15 + 1e-9 })
        #expect(Set(first).count > 10)
        #expect(try delays(seed: 42) == first)
        #expect(try delays(seed: 43) != first)
    }

    @Test func percentIsAboutRightAndRepeatable() throws {
        func drops(seed: UInt64) throws -> [Bool] {
            var conn = try faults("drop,p=30", seed: seed)
            return try (0..<1000).map { conn.decide(try packet("2[\"e\"]"), seq: $0, now: 1000).drop }
        }
        let chosen = try drops(seed: 7)
        #expect((250...350).contains(chosen.filter { $0 }.count))
        #expect(try drops(seed: 7) == chosen)
    }

    @Test func afterCountsFromTheConnsStart() throws {
        var conn = try faults("drop,after=2s")
        #expect(!conn.decide(try packet("2[\"e\"]"), seq: 1, now: 1001.9).drop)
        #expect(conn.decide(try packet("2[\"e\"]"), seq: 2, now: 1002).drop)
    }

    @Test func refusesTheNextConnectsAcrossConns() throws {
        let plan = FaultPlan(rules: [try FaultRule("refuse-connect=1,message=jwt expired")], seed: 1)
        var first = ConnectionFaults(plan: plan, conn: "c1", engineVersion: .v4, start: 0)
        let refused = first.decide(try packet("0{\"token\":\"old\"}", dir: .clientToServer), seq: 3, now: 1)
        #expect(refused.drop)
        #expect(refused.reply.map { SocketIOCodec.encode($0).text } == #"4{"message":"jwt expired"}"#)
        #expect(refused.records.first?.raw == #"4{"message":"jwt expired"}"#)
        var second = ConnectionFaults(plan: plan, conn: "c2", engineVersion: .v4, start: 0)
        #expect(!second.decide(try packet("0{\"token\":\"new\"}", dir: .clientToServer), seq: 9, now: 2).drop)
        // A namespace's CONNECT is another rule's business, and protocol v4 answers with a string.
        let v4 = FaultPlan(rules: [try FaultRule("refuse-connect=1,message=no,nsp=/admin")], seed: 1)
        var old = ConnectionFaults(plan: v4, conn: "c1", engineVersion: .v3, start: 0)
        #expect(!old.decide(try packet("0", dir: .clientToServer, version: .v4), seq: 1, now: 1).drop)
        #expect(old.decide(try packet("0/admin,", dir: .clientToServer, version: .v4), seq: 2, now: 1).reply.map { SocketIOCodec.encode($0).text } == #"4/admin,"no""#)
    }

    @Test func rewritesArgumentsAndKeepsBinary() throws {
        var conn = try faults(#"set=args[0].price:0,event=quote"#, "unset=args[0].secret,event=quote")
        let quote = conn.decide(try packet(#"2["quote",{"price":12.5,"secret":"s","big":12345678901234567890}]"#), seq: 4, now: 1001)
        let replacement = try #require(quote.replacement)
        #expect(SocketIOCodec.encode(replacement).text == #"2["quote",{"price":0,"big":12345678901234567890}]"#)
        #expect(quote.records.map(\.action) == [.rewrite, .rewrite])
        var binary = SocketIODecoder(version: .v5)
        _ = try binary.decode(text: #"51-["quote",{"price":1},{"_placeholder":true,"num":0}]"#)
        let joined = try #require(try binary.decode(binary: [0, 1, 2]))
        let record = PacketRecord(joined, raw: "51-...", dir: .serverToClient, transport: .websocket)
        let rewritten = try #require(conn.decide(record, seq: 5, now: 1001).replacement)
        let encoded = SocketIOCodec.encode(rewritten)
        #expect(encoded.text == #"51-["quote",{"price":0},{"_placeholder":true,"num":0}]"#)
        #expect(encoded.attachments == [[0, 1, 2]])
        // A path the packet lacks: nothing changes, and the record says why.
        var missing = try faults("set=args[3].x:1")
        let untouched = missing.decide(try packet(#"2["e",1]"#), seq: 6, now: 1001)
        #expect(untouched.replacement == nil)
        #expect(untouched.records.first?.detail?.contains("not applied") == true)
    }

    @Test func throttleSpacesBytesAtItsRate() throws {
        var conn = try faults("throttle=1kB/s,dir=s2c")
        #expect(conn.throttle(bytes: 500, dir: .serverToClient, now: 1000).delay == 0)
        let second = conn.throttle(bytes: 500, dir: .serverToClient, now: 1000)
        #expect(abs(second.delay - 0.5) < 1e-9)
        #expect(second.record?.detail == "500 bytes at 1 kB/s")
        #expect(conn.throttle(bytes: 500, dir: .clientToServer, now: 1000).delay == 0)
    }

    @Test func aTimedDisconnectIsFoundForItsConn() throws {
        let conn = try faults("disconnect=2s,how=reset,conn=c1")
        #expect(conn.timedDisconnect?.after == 2)
        #expect(conn.timedDisconnect?.how == .reset)
        let other = ConnectionFaults(plan: conn.plan, conn: "c2", engineVersion: .v4, start: 0)
        #expect(other.timedDisconnect == nil)
    }
}
