import SocketIOProtocol
import Testing
import TrafficCapture

@testable import TrafficReplay

/// What a replay compares, as values: packets made from wire text with the codec, normalized and
/// paired, without a server.
@Suite("Replay comparison")
struct ReplayComparisonTests {
    func packet(_ text: String, dir: Direction = .serverToClient) throws -> PacketRecord {
        var decoder = SocketIODecoder(version: .v5)
        let decoded = try #require(try decoder.decode(text: text))
        return PacketRecord(decoded, raw: text, dir: dir, transport: .websocket)
    }

    @Test("Sids and pids of a CONNECT, and the times of an echoed token, are stand-ins; other values are compared")
    func standIns() throws {
        let normalizer = PacketNormalizer()
        #expect(normalizer.normalize(try packet(#"0{"sid":"a","pid":"x"}"#)) == normalizer.normalize(try packet(#"0{"sid":"b","pid":"y"}"#)))
        // HS256 tokens with the same claims but other times (iat, exp), and one with another user.
        let early = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoiYWRhIiwiaWF0IjoxLCJleHAiOjJ9.c2ln"
        let later = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoiYWRhIiwiaWF0IjozLCJleHAiOjR9.c2ln"
        let other = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoiYm9iIiwiaWF0IjoxLCJleHAiOjJ9.c2ln"
        let echo = { (token: String) in try self.packet(#"2["token",""# + token + #""]"#) }
        #expect(normalizer.normalize(try echo(early)) == normalizer.normalize(try echo(later)))
        #expect(normalizer.normalize(try echo(early)) != normalizer.normalize(try echo(other)))
    }

    @Test("Numbers compare as exact decimals: an edited integer past 2^53 is a change; 1.0, 1 and 1e0 are one number")
    func exactNumbers() throws {
        let normalizer = PacketNormalizer()
        let changes = { (a: String, b: String) throws in
            ConnectionDiff.differences(normalizer.normalize(try self.packet(a)), normalizer.normalize(try self.packet(b)), path: "").count
        }
        #expect(try changes(#"2["n",9007199254740993]"#, #"2["n",9007199254740992]"#) == 1)
        #expect(try changes(#"2["n",12345678901234567890]"#, #"2["n",12345678901234567891]"#) == 1)
        #expect(try changes(#"2["n",0.1]"#, #"2["n",0.10000000000000001]"#) == 1)
        #expect(try changes(#"2["n",-1]"#, #"2["n",1]"#) == 1)
        #expect(try changes(#"2["n",1.0,100,-0,1.50,0.000]"#, #"2["n",1,1e2,0,15E-1,0]"#) == 0)
        #expect(try changes(#"2["n",1e999999999999]"#, #"2["n",1e999999999998]"#) == 1, "an exponent too large to read is compared as written")
    }

    @Test("An echoed token compares by header, claims and lifetime: an edited alg or exp is a change, re-minted times are not")
    func tokenEdits() throws {
        let normalizer = PacketNormalizer()
        func part(_ json: String) -> String { Base64.encodeURL(Array(json.utf8)) }
        func token(_ header: String, _ claims: String) -> String { "\(part(header)).\(part(claims)).c2ln" }
        let echo = { (token: String) in normalizer.normalize(try self.packet(#"2["token",""# + token + #""]"#)) }
        let recorded = token(#"{"alg":"HS256"}"#, #"{"sub":"ada","iat":1000,"exp":4600}"#)
        #expect(try echo(recorded) == echo(token(#"{"alg":"HS256"}"#, #"{"sub":"ada","iat":9000,"exp":12600}"#)))
        #expect(try echo(recorded) != echo(token(#"{"alg":"HS256"}"#, #"{"sub":"ada","iat":1000,"exp":8200}"#)))
        #expect(try echo(recorded) != echo(token(#"{"alg":"none"}"#, #"{"sub":"ada","iat":1000,"exp":4600}"#)))
        #expect(try echo(recorded) != echo(token(#"{"alg":"HS256"}"#, #"{"sub":"ada","iat":1000}"#)))
    }

    @Test("With recovery, a server event's last argument is an offset only when it looks like one: an edited text is still a change")
    func offsetsOnlyWhereTheyCanBe() throws {
        let recovering = PacketNormalizer(recoveryOffsets: true)
        let equal = { (a: String, b: String) throws in recovering.normalize(try self.packet(a)) == recovering.normalize(try self.packet(b)) }
        #expect(try equal(#"2["chat","hi","oRk5bE2JQq1tnYkIAAAB"]"#, #"2["chat","hi","zzzq2"]"#))
        #expect(try equal(#"2["chat","hi","17"]"#, #"2["chat","hi","18"]"#))
        #expect(try !equal(#"2["message-back","You sent: hello"]"#, #"2["message-back","You sent: EDITED"]"#))
        #expect(try !equal(#"2["chat","hi","17"]"#, #"2["chat","ho","18"]"#))
        #expect(try !equal(#"21["chat","17"]"#, #"21["chat","18"]"#), "an event with an ack id carries no offset")
    }

    @Test("A capture is replayed with recovery only when a CONNECT answer carries a string pid, not notepack's undefined as an old capture kept it")
    func recoveryNeedsAStringPid() throws {
        func capture(_ connectAnswer: String) throws -> [CaptureRecord] {
            [CaptureRecord(seq: 1, ts: "2026-12-01T10:00:00.000000Z", conn: "c1", .packet(try packet(connectAnswer)))]
        }
        #expect(Replayer.usesRecovery(try capture(#"0{"sid":"S","pid":"P"}"#)))
        #expect(!Replayer.usesRecovery(try capture(#"0{"sid":"S","pid":{"$ext":{"type":0,"data":"AA=="}}}"#)))
        #expect(!Replayer.usesRecovery(try capture(#"0{"sid":"S"}"#)))
    }

    @Test("Ignored paths: an index, a key under it, any key at any depth")
    func ignoredPaths() throws {
        let recorded = try packet(#"2["tick",{"at":1,"id":7,"inner":{"id":8,"keep":true}},"x"]"#)
        let replayed = try packet(#"2["tick",{"at":2,"id":9,"inner":{"id":10,"keep":true}},"y"]"#)
        let strict = ConnectionDiff.compare(conn: "c1", expected: [(1, recorded)], actual: [replayed], normalizer: PacketNormalizer())
        #expect(Set(strict.changed.map(\.path)) == ["args[0].at", "args[0].id", "args[0].inner.id", "args[1]"])
        let lenient = PacketNormalizer(ignoredPaths: ["args[0].at", "*.id", "args[1]"])
        #expect(ConnectionDiff.compare(conn: "c1", expected: [(1, recorded)], actual: [replayed], normalizer: lenient).isEqual)
    }

    @Test("Packets pair by type, namespace and event in order; numbers compare by value; what is left over is missing or unexpected")
    func pairing() throws {
        let expected = [(1, try packet(#"2["a",1.0]"#)), (2, try packet(#"2["b",{"x":1,"y":2}]"#)), (3, try packet(#"2["c"]"#))]
        let actual = [try packet(#"2["b",{"y":2,"x":1}]"#), try packet(#"2["a",1]"#), try packet(#"2["d"]"#)]
        let diff = ConnectionDiff.compare(conn: "c1", expected: expected, actual: actual, normalizer: PacketNormalizer())
        #expect(diff.matched == 2)
        #expect(diff.missing.map(\.key) == [PacketNormalizer.key(expected[2].1)])
        #expect(diff.unexpected.map(\.key) == [PacketNormalizer.key(actual[2])])
        #expect(diff.changed.isEmpty)
    }
}

@Suite("Replay comparison with connection-state recovery")
struct RecoveryComparisonTests {
    func packet(_ text: String, dir: Direction = .serverToClient) throws -> PacketRecord {
        try ReplayComparisonTests().packet(text, dir: dir)
    }

    @Test("A recovering session's event offsets and CONNECT offset are stand-ins; other sessions compare them")
    func offsets() throws {
        let recorded = try packet(#"2["message",{"m":"x"},"17"]"#)
        let replayed = try packet(#"2["message",{"m":"x"},"3"]"#)
        #expect(PacketNormalizer(recoveryOffsets: true).normalize(recorded) == PacketNormalizer(recoveryOffsets: true).normalize(replayed))
        #expect(PacketNormalizer().normalize(recorded) != PacketNormalizer().normalize(replayed))
        // An event with an ack id carries no offset (socket.io does not keep those).
        let withAck = try packet(#"21["ask","17"]"#)
        #expect(!PacketNormalizer.hasOffset(withAck))
        let asking = try packet(#"0{"token":"t","pid":"p1","offset":"17"}"#, dir: .clientToServer)
        let askingAgain = try packet(#"0{"token":"t","pid":"p2","offset":"3"}"#, dir: .clientToServer)
        #expect(PacketNormalizer().normalize(asking) == PacketNormalizer().normalize(askingAgain))
    }

    @Test("A recovering CONNECT is sent with this run's pid and offset")
    func translates() async throws {
        let recoveries = Recoveries(closes: [:])
        await recoveries.learn(recorded: try packet(#"0{"sid":"s1","pid":"old"}"#), actual: try packet(#"0{"sid":"s9","pid":"new"}"#))
        await recoveries.learn(recorded: try packet(#"2["chat response","hi","41"]"#), actual: try packet(#"2["chat response","hi","2"]"#))
        let data = await recoveries.translate(try JSONValue.parse(#"{"token":"t","pid":"old","offset":"41"}"#))
        #expect(data?.jsonText == #"{"token":"t","pid":"new","offset":"2"}"#)
    }
}
