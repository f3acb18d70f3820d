import Foundation
import PeerSupport
import Synchronization
import Testing
@testable import TrafficCapture
import TrafficObservation

private func temporaryPath(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("siotap-\(UUID().uuidString)-\(name)").path
}

@Suite("Capture format v1 files")
struct CaptureFileTests {
    static let samples: [CaptureRecord.Body] = [
        .session(SessionRecord(url: "/socket.io/?EIO=4&transport=polling&t=N8hyd6w", eio: .v4, transport: .polling, sid: "lv_VI97HAXpY6yYWAAAC",
                               headers: .object(["Host": "localhost:8080", "Authorization": "Bearer x.y.z"]), remote: "127.0.0.1:51234", upstream: "http://127.0.0.1:3000")),
        .engine(EngineRecord(dir: .serverToClient, transport: .polling, type: .open, data: try! JSONValue.parse(#"{"sid":"a","pingInterval":25000}"#))),
        .engine(EngineRecord(dir: .clientToServer, transport: .websocket, type: .ping, data: "probe")),
        .packet(PacketRecord(dir: .clientToServer, transport: .websocket, type: .event, nsp: "/", id: 12, event: "n",
                             args: try! JSONValue.parse(#"[12345678901234567890,0.1,-0.0,"\ud83d\ude00","\u2028",{"b":1,"a":2}]"#).arrayValue!,
                             raw: #"212["n",12345678901234567890,0.1,-0.0,"\ud83d\ude00","\u2028",{"b":1,"a":2}]"#)),
        .packet(PacketRecord(dir: .serverToClient, transport: .polling, type: .binaryAck, nsp: "/x", id: 3, args: [.binary([1, 2, 3])],
                             raw: #"61-/x,3[{"_placeholder":true,"num":0}]"#, attachments: ["AQID"], latencyMilliseconds: 1.25)),
        .packet(PacketRecord(dir: .clientToServer, transport: .polling, type: .connect, nsp: "/", data: .object(["token": "t"]), raw: #"0{"token":"t"}"#)),
        .jwt(JWTRecord(source: "auth.token", nsp: "/", header: .object(["alg": "HS256"]), claims: .object(["id": 42]), verified: nil)),
        .jwt(JWTRecord(source: "query.token", header: .object(["alg": "HS256"]), claims: .object(["id": 1]), verified: false, reason: "expired at 2026-01-01T00:00:00Z",
                       exp: "2026-01-01T00:00:00Z", expiresInSeconds: -3.5, warnings: ["w"])),
        .close(CloseRecord(by: .proxy, reason: "upstream refused the connection")),
        .error(ErrorRecord(dir: .clientToServer, code: "socketio.invalid_payload", message: "invalid payload", raw: "2{}")),
        .fault(FaultRecord(rule: "delay=300ms,jitter=50ms,event=n", action: .delay, dir: .serverToClient, packet: 4, delayMilliseconds: 312.5)),
        .fault(FaultRecord(rule: "refuse-connect=1,message=jwt expired", action: .refuseConnect, dir: .serverToClient, packet: 6,
                           raw: #"4{"message":"jwt expired"}"#)),
        .fault(FaultRecord(rule: "disconnect=2s,how=reset", action: .disconnect, detail: "how=reset, 2 s after the conn began")),
        .session(SessionRecord(url: "/socket.io/?EIO=4&transport=websocket", eio: .v4, transport: .websocket, sid: "m", parser: .msgpack)),
        .packet(PacketRecord(dir: .serverToClient, transport: .websocket, type: .event, nsp: "/", event: "b", args: [.binary([0, 255])],
                             raw: "base64:g6R0eXBlAqRkYXRhkqFixAIA/6Nuc3ChLw==", attachments: ["AP8="])),
        // Forward mode, through an intercepted CONNECT.
        .session(SessionRecord(
            url: "/socket.io/?EIO=4&transport=websocket", path: "/socket.io/", eio: .v4, transport: .websocket, remote: "127.0.0.1:5",
            upstream: "https://example.com:443", target: "example.com:443", scheme: "https",
            tls: SessionTLS(version: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256", sni: "example.com", upstreamCertificate: .init(
                subject: "CN=example.com", issuer: "CN=R3,O=Let's Encrypt,C=US", notAfter: "2027-01-01T00:00:00Z"
            ))
        )),
        .intervention(InterventionRecord(action: .emit, by: .api, dir: .clientToServer, raw: #"51-1000000000["up",{"_placeholder":true,"num":0}]"#, attachments: ["AQID"])),
        .intervention(InterventionRecord(action: .hold, by: .cli, dir: .serverToClient, packet: 4, breakpoint: "b1")),
        .intervention(InterventionRecord(action: .timeout, by: .proxy, dir: .serverToClient, packet: 4, breakpoint: "b1", heldMilliseconds: 60000.25, detail: "nobody decided within 60 s")),
        .intervention(InterventionRecord(action: .answer, by: .proxy, dir: .serverToClient, packet: 7, answers: 6)),
    ]

    @Test("Every kind of record survives a line and keeps its wire text")
    func lineRoundTrip() throws {
        for (index, body) in Self.samples.enumerated() {
            let record = CaptureRecord(seq: index + 1, ts: "2026-11-27T08:45:02.123456Z", conn: "c1", body)
            let line = record.jsonLine
            #expect(!line.contains("\n"))
            #expect(try CaptureRecord(jsonLine: line) == record)
        }
        let event = CaptureRecord(seq: 4, ts: "2026-11-27T08:45:02.000001Z", conn: "c1", Self.samples[3]).jsonLine
        #expect(event.hasPrefix(#"{"seq":4,"ts":"2026-11-27T08:45:02.000001Z","kind":"packet","conn":"c1","dir":"c2s""#))
        #expect(event.contains(#""args":[12345678901234567890,0.1,-0.0,"\ud83d\ude00","\u2028",{"b":1,"a":2}]"#))
        let jwt = CaptureRecord(seq: 1, ts: "t", Self.samples[6]).jsonLine
        #expect(jwt.contains(#""verified":null"#))
        let binary = CaptureRecord(seq: 1, ts: "t", Self.samples[4]).jsonLine
        #expect(binary.contains(#""args":[{"$binary":"AQID"}]"#))
        #expect(binary.contains(#""latency_ms":1.25"#))
    }

    @Test("What the writer writes reads back the same, and the fixtures are written again byte for byte")
    func writerRoundTripsAndKeepsTheFixtures() throws {
        var records = Self.samples.enumerated().map { CaptureRecord(seq: $0.offset + 1, ts: "2026-11-27T08:45:02.123456Z", conn: $0.offset % 2 == 0 ? "c1" : nil, $0.element) }
        records.append(CaptureRecord(seq: 9, ts: "t", .session(SessionRecord(url: "/?a=\"q\"\n", eio: .v3, transport: .websocket))))
        records.append(CaptureRecord(seq: 10, ts: "t", .error(ErrorRecord(dir: nil, code: "c", message: "tab\there \u{1} \u{2028}"))))
        records.append(CaptureRecord(seq: 11, ts: "t", .jwt(JWTRecord(source: "s", header: .null, claims: .object([:]), verified: true, expiresInSeconds: 1e21))))
        // Numbers are written as digits, without a String: the largest ack id, zero, a seq past 2^53.
        records.append(CaptureRecord(seq: 9_007_199_254_740_993, ts: "t", .packet(PacketRecord(dir: .serverToClient, transport: .websocket, type: .ack, nsp: "/", id: .max, args: [], raw: "3\(UInt64.max)[]"))))
        records.append(CaptureRecord(seq: 0, ts: "t", .packet(PacketRecord(dir: .serverToClient, transport: .websocket, type: .ack, nsp: "/", id: 0, args: [], raw: "30[]"))))
        #expect(records[records.count - 2].jsonLine.hasPrefix(#"{"seq":9007199254740993,"#))
        #expect(records[records.count - 2].jsonLine.contains(#","id":18446744073709551615,"#))
        #expect(records[records.count - 1].jsonLine.contains(#""seq":0,"#) && records[records.count - 1].jsonLine.contains(#","id":0,"#))
        // Every record the writer writes reads back the same.
        for record in records {
            #expect(try CaptureRecord(jsonLine: record.jsonLine) == record, "\(record.jsonLine)")
        }
        // And the fixtures, written by the proxy, are written again byte for byte: the writer is
        // the one place that says the fields' order, and it has not moved.
        let fixtures = PeerPaths.root.appendingPathComponent("fixtures")
        var lines = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: fixtures.path) where name.hasSuffix(".jsonl") {
            let text = try String(contentsOf: fixtures.appendingPathComponent(name), encoding: .utf8)
            for line in text.split(separator: "\n") {
                #expect(try CaptureRecord(jsonLine: String(line)).jsonLine == line, "\(name): \(line)")
                lines += 1
            }
        }
        #expect(lines > 100)
    }

    @Test("Lines that are not records say why", arguments: [
        ("[1]", CaptureReadError.Code.invalidRecord), ("{\"seq\":1}", .invalidRecord), ("{\"seq\":1,\"ts\":\"t\",\"kind\":\"bogus\"}", .invalidRecord),
        ("{\"seq\":1,\"ts\":\"t\",\"kind\":\"close\",\"by\":\"client\"}", .invalidRecord), ("nope", .invalidJSON),
    ])
    func invalidLines(line: String, code: CaptureReadError.Code) {
        let error = #expect(throws: CaptureReadError.self) { try CaptureRecord(jsonLine: line) }
        #expect(error?.code == code)
    }

    @Test("The writer numbers records in file order and the reader gets them back")
    func writeAndRead() throws {
        let path = temporaryPath("capture.jsonl")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try CaptureWriter(path: path)
        for body in Self.samples { try writer.write(body, conn: "c1") }
        writer.close()
        let (records, problems) = try CaptureReader.readAll(path: path)
        #expect(problems.isEmpty)
        #expect(records.map(\.seq) == Array(1...Self.samples.count))
        #expect(records.map(\.body) == Self.samples)
        #expect(records.allSatisfy { RFC3339.parse($0.ts) != nil && $0.ts.count == 27 })
        #expect(throws: CaptureWriteError(.closed, path: path)) { try writer.write(Self.samples[0]) }
    }

    @Test("The queue writes what many threads add, in order per thread, numbered, each line whole")
    func queueFromManyThreads() async throws {
        let path = temporaryPath("queue.jsonl")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try CaptureWriter(path: path)
        let seen = Mutex<[Int]>([])
        let queue = CaptureQueue(writer: writer, delivered: { line in seen.withLock { $0.append(line.record.seq) } })
        let threads = 8, each = 2_000
        let told = ToldSeqs()
        await withTaskGroup(of: Void.self) { group in
            for thread in 0..<threads {
                group.addTask {
                    for index in 0..<each {
                        let seq = queue.add(.close(CloseRecord(by: .proxy, reason: "\(index)")), conn: "t\(thread)")
                        told.seqs.withLock { $0[seq] = "t\(thread)/\(index)" }
                    }
                }
            }
        }
        queue.close()
        queue.add(.close(CloseRecord(by: .proxy, reason: "after close")), conn: "late")
        writer.close()
        let (records, problems) = try CaptureReader.readAll(path: path)
        #expect(problems.isEmpty)
        #expect(records.count == threads * each)
        #expect(records.map(\.seq) == Array(1...(threads * each)), "records out of order")
        #expect(seen.withLock { $0 } == records.map(\.seq), "delivered out of order")
        // The seq adding told is the one written.
        let toldSeqs = told.seqs.withLock { $0 }
        #expect(toldSeqs.count == threads * each)
        for record in records {
            guard case .close(let close) = record.body else { continue }
            #expect(toldSeqs[record.seq] == "\(record.conn ?? "")/\(close.reason)")
        }
        for thread in 0..<threads {
            let reasons = records.filter { $0.conn == "t\(thread)" }.map { record -> String in
                guard case .close(let close) = record.body else { return "" }
                return close.reason
            }
            #expect(reasons == (0..<each).map(String.init), "thread \(thread)'s records out of order")
        }
        // Stamped when added, so in order too.
        let times = records.map(\.ts)
        #expect(zip(times, times.dropFirst()).allSatisfy { $0 <= $1 }, "a time goes back in file order")
    }

    @Test("Each line is made once: what the live view and the inspector get is the file's line, byte for byte; a given time is kept")
    func deliveredLinesAreTheFile() throws {
        let path = temporaryPath("lines.jsonl")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try CaptureWriter(path: path)
        let delivered = Mutex<[UInt8]>([])
        let queue = CaptureQueue(writer: writer, delivered: { line in delivered.withLock { $0 += line.bytes + [0x0A] } })
        let big = String(repeating: "b", count: 1 << 20)  // past a chunk: the batch goes out in several writes
        for (index, body) in (Self.samples + [.packet(PacketRecord(dir: .serverToClient, transport: .websocket, type: .event, nsp: "/", raw: "42[\"big\",\"\(big)\"]"))]).enumerated() {
            queue.add(body, conn: "c\(index)", time: index == 0 ? 1_234_567_890.5 : nil)
        }
        queue.close()
        writer.close()
        let file = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(delivered.withLock { $0 } == file)
        let (records, _) = try CaptureReader.readAll(path: path)
        #expect(records.first?.ts == "2009-02-13T23:31:30.500000Z")
        #expect(records.map(\.seq) == Array(1...records.count))
    }

    @Test("Live, a given time never goes back in file order (the proxy's observed frames); an import's times are kept as given",
          arguments: [CaptureQueue.Draining.background, .onFlush])
    func givenTimes(draining: CaptureQueue.Draining) {
        let stamps = Mutex<[String]>([])
        let queue = CaptureQueue(writer: nil, draining: draining, delivered: { line in stamps.withLock { $0.append(line.record.ts) } })
        for (conn, time) in [("c1", 1_000_000_010.0), ("c2", 1_000_000_005.0), ("c3", 1_000_000_020.0)] {
            queue.add(.close(CloseRecord(by: .proxy, reason: conn)), conn: conn, time: time)
        }
        queue.close()
        let second = draining == .background ? "2001-09-09T01:46:50.000000Z" : "2001-09-09T01:46:45.000000Z"
        #expect(stamps.withLock { $0 } == ["2001-09-09T01:46:50.000000Z", second, "2001-09-09T01:47:00.000000Z"])
    }

    @Test("Behind a slow consumer, adding never waits, readers are told to pause and resumed at half the high water, nothing is dropped", .timeLimit(.minutes(1)))
    func backpressure() async throws {
        // The live view stuck (a terminal nobody reads): delivery waits until the test opens it.
        let stuck = DispatchSemaphore(value: 0)
        let seen = Mutex<[Int]>([])
        let queue = CaptureQueue(writer: nil, highWater: 100, delivered: { line in
            if line.record.seq == 1 { stuck.wait() }
            seen.withLock { $0.append(line.record.seq) }
        })
        // Adding 1,000 while the consumer is stuck returns at once (it used to wait on the writer).
        for index in 0..<1_000 { queue.add(.close(CloseRecord(by: .proxy, reason: "\(index)")), conn: "c1") }
        #expect(queue.waiting.records > 100)
        final class Count: Sendable { let value = Mutex(0) }
        let resumed = Count()
        let resume: @Sendable () -> Void = { resumed.value.withLock { $0 += 1 } }
        let first = queue.admit(orResume: resume), second = queue.admit(orResume: resume)
        #expect(!first && !second, "a reader must pause behind a stuck consumer")
        #expect(resumed.value.withLock { $0 } == 0)
        stuck.signal()
        queue.flush()
        #expect(resumed.value.withLock { $0 } == 2, "every paused reader is resumed once")
        let unexpected: @Sendable () -> Void = { Issue.record("resumed although never paused") }
        let admitted = queue.admit(orResume: unexpected)
        #expect(admitted)
        #expect(seen.withLock { $0 } == Array(1...1_000), "a record was dropped or reordered")
        queue.close()
    }

    @Test("Behind a slow consumer, a few large records pause readers as many small ones do: the high water is in bytes too", .timeLimit(.minutes(1)))
    func backpressureInBytes() async throws {
        let stuck = DispatchSemaphore(value: 0)
        let queue = CaptureQueue(writer: nil, highWater: 1_000_000, highWaterBytes: 10 << 20, delivered: { line in
            if line.record.seq == 1 { stuck.wait() }
        })
        let big = String(repeating: "a", count: 1 << 20)
        let packet = PacketRecord(dir: .serverToClient, transport: .websocket, type: .event, nsp: "/", raw: "42[\"big\",\"\(big)\"]")
        for _ in 0..<4 { queue.add(.packet(packet), conn: "c1") }
        let never: @Sendable () -> Void = { Issue.record("paused below the high water") }
        let admitted = queue.admit(orResume: never)
        #expect(admitted, "4 MiB of raw text (8 counted) is below 10 MiB")
        for _ in 0..<4 { queue.add(.packet(packet), conn: "c1") }
        final class Count: Sendable { let value = Mutex(0) }
        let resumed = Count()
        let resume: @Sendable () -> Void = { resumed.value.withLock { $0 += 1 } }
        let paused = !queue.admit(orResume: resume)
        #expect(paused, "8 records, 16 MiB counted: past the bytes' high water")
        stuck.signal()
        queue.flush()
        #expect(resumed.value.withLock { $0 } == 1)
        queue.close()
    }

    @Test("A queue whose file fails says so once and still delivers, numbered")
    func queueOnAFailingFile() throws {
        let path = temporaryPath("failing.jsonl")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try CaptureWriter(path: path)
        writer.close()
        let failures = Mutex(0)
        let seen = Mutex<[Int]>([])
        let queue = CaptureQueue(writer: writer, failed: { _ in failures.withLock { $0 += 1 } }, delivered: { line in seen.withLock { $0.append(line.record.seq) } })
        for _ in 0..<3 {
            queue.add(.close(CloseRecord(by: .client, reason: "x")), conn: "c1")
            queue.flush()
        }
        #expect(failures.withLock { $0 } == 1)
        #expect(seen.withLock { $0 } == [1, 2, 3])
    }

    @Test("Concurrent writers never interleave within a line")
    func concurrentWrites() async throws {
        let path = temporaryPath("concurrent.jsonl")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try CaptureWriter(path: path)
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for index in 0..<100 { _ = try? writer.write(Self.samples[3], conn: "t\(task)-\(index)") }
                }
            }
        }
        writer.close()
        let (records, problems) = try CaptureReader.readAll(path: path)
        #expect(problems.isEmpty)
        #expect(records.count == 800)
        #expect(records.map(\.seq) == Array(1...800))
    }

    @Test("A capture cut at any byte keeps every whole line and reports the cut one")
    func truncatedAnywhere() throws {
        let lines = Self.samples.enumerated().map { CaptureRecord(seq: $0.offset + 1, ts: "2026-11-27T08:45:02.123456Z", $0.element).jsonLine + "\n" }
        let file = Array(lines.joined().utf8)
        let path = temporaryPath("cut.jsonl")
        defer { try? FileManager.default.removeItem(atPath: path) }
        var lineEnds: [Int] = []
        var total = 0
        for line in lines {
            total += line.utf8.count
            lineEnds.append(total)
        }
        for cut in stride(from: 0, through: file.count, by: 7) + [file.count - 1] {
            try Data(file[..<cut]).write(to: URL(fileURLWithPath: path))
            let (records, problems) = try CaptureReader.readAll(path: path)
            // A line cut just before its newline is still a whole record.
            let whole = lineEnds.filter { $0 - 1 <= cut }.count
            #expect(records.count == whole, "cut at \(cut)")
            let partial = cut > (lineEnds.last { $0 - 1 <= cut } ?? 0)
            #expect(problems.map(\.code) == (partial ? [.truncatedLastLine] : []), "cut at \(cut)")
        }
    }

    @Test("A bad line in the middle is reported and the rest read")
    func badMiddleLine() throws {
        let path = temporaryPath("middle.jsonl")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let good = CaptureRecord(seq: 1, ts: "2026-11-27T08:45:02.123456Z", Self.samples[8]).jsonLine
        try (good + "\n{broken\n\n" + good + "\r\n").write(toFile: path, atomically: true, encoding: .utf8)
        let (records, problems) = try CaptureReader.readAll(path: path)
        #expect(records.count == 2)
        #expect(problems.map(\.line) == [2])
        #expect(problems.map(\.code) == [.invalidJSON])
        #expect(throws: CaptureReadError.self) { try CaptureReader.readAll(path: path + ".missing") }
    }

    @Test("A line past the limit is reported when the limit is passed and skipped; the records around it are read, whether it ends or not")
    func lineTooLong() throws {
        let good = CaptureRecord(seq: 1, ts: "2026-11-27T08:45:02.123456Z", Self.samples[8]).jsonLine
        let long = String(repeating: "x", count: 300_000)
        for (text, expected) in [
            (good + "\n" + long + "\n" + good + "\n", 2),
            (good + "\n" + long, 1),  // no newline after it: the end of the file ends it
            (good + "\n" + long + "\n" + long + "\n" + good, 2),
        ] {
            let reader = CaptureReader(bytes: Array(text.utf8), maxLine: 100_000).makeIterator()
            var records = 0
            var problems: [CaptureReadError] = []
            while let entry = reader.next() {
                switch entry {
                case .record: records += 1
                case .problem(let problem): problems.append(problem)
                }
            }
            #expect(records == expected)
            #expect(problems.map(\.code).allSatisfy { $0 == .lineTooLong } && problems.count == text.components(separatedBy: long).count - 1)
            #expect(problems.first?.line == 2)
        }
        // From a file read in pieces: the long line is refused before it is held whole.
        let path = temporaryPath("long.jsonl")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try (good + "\n" + String(repeating: "y", count: 2_000_000) + "\n" + good + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let reader = CaptureReader(path: path, maxLine: 200_000).makeIterator()
        var entries: [String] = []
        while let entry = reader.next() {
            if case .problem(let problem) = entry { entries.append(problem.code.rawValue) } else { entries.append("record") }
        }
        #expect(entries == ["record", "line_too_long", "record"])
    }
}

@Suite("Writing a capture that cannot be written")
struct CaptureWriteErrorTests {
    @Test("A file that cannot be made, a full disk, a closed writer: each its own code, with the path and the system's reason")
    func failures() throws {
        do { _ = try CaptureWriter(path: "/nonexistent-siotap-dir/capture.jsonl"); Issue.record("opened") } catch {
            #expect(error.code == .cannotOpen && error.description.hasPrefix("cannot open /nonexistent-siotap-dir/capture.jsonl: "))
        }
        // /dev/full takes the open and refuses every write: ENOSPC.
        let full = try CaptureWriter(path: "/dev/full", append: true)
        do { _ = try full.write(.close(CloseRecord(by: .client, reason: "x"))); Issue.record("wrote to a full disk") } catch {
            #expect(error.code == .cannotWrite && error.description.contains("No space left on device"), "\(error)")
        }
        full.close()
        do { _ = try full.write(.close(CloseRecord(by: .client, reason: "x"))); Issue.record("wrote after close") } catch {
            #expect(error.code == .closed)
        }
    }
}

@Suite("RFC 3339 times")
struct RFC3339Tests {
    @Test("Formatting and parsing agree, before and after 1970")
    func roundTrip() {
        #expect(RFC3339.format(secondsSince1970: 0) == "1970-01-01T00:00:00.000000Z")
        #expect(RFC3339.format(secondsSince1970: 1_700_000_000.25) == "2023-11-14T22:13:20.250000Z")
        #expect(RFC3339.format(secondsSince1970: 951_782_400, fractionDigits: 0) == "2000-02-29T00:00:00Z")
        #expect(RFC3339.format(secondsSince1970: -1, fractionDigits: 3) == "1969-12-31T23:59:59.000Z")
        // About 7,000 instants ten days apart (less half a second), over 190 years: checking 69,000
        // a day apart held one of the test run's two threads for 12 s, with servers' tasks waiting.
        let disagreeing = stride(from: -2_000_000_000.0, to: 4_000_000_000.0, by: 863_999.5).filter {
            RFC3339.parse(RFC3339.format(secondsSince1970: $0)) != $0
        }
        #expect(disagreeing.isEmpty, "\(disagreeing.prefix(5))")
        #expect(RFC3339.parse("2026-11-27T09:45:02+01:00") == RFC3339.parse("2026-11-27T08:45:02Z"))
        #expect(RFC3339.parse("2026-13-01T00:00:00Z") == nil)
        #expect(RFC3339.parse("yesterday") == nil)
    }
}

@Suite("The published JSON Schema")
struct CaptureSchemaTests {
    @Test("Every kind of record the writer makes validates against docs/capture.schema.json")
    func validates() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("siotap-schema-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try CaptureWriter(path: path)
        for body in CaptureFileTests.samples { try writer.write(body, conn: "c1") }
        var decoder = TrafficDecoder(engineVersion: .v4)
        for (frame, dir) in [
            (TrafficDecoder.Frame.webSocket(.text(#"0{"sid":"s","upgrades":[],"pingInterval":1,"pingTimeout":1}"#)), Direction.serverToClient),
            (.webSocket(.text(#"40/admin,{"token":"eyJhbGciOiJIUzI1NiJ9.eyJpZCI6NDJ9.c2ln"}"#)), .clientToServer),
            (.pollingBody(Array("451-[\"f\",{\"_placeholder\":true,\"num\":0}]\u{1E}bAQID\u{1E}6".utf8)), .clientToServer),
            (.webSocket(.text("4abc")), .clientToServer),
        ] {
            for body in decoder.decode(frame, dir: dir).records { try writer.write(body, conn: "c2") }
        }
        writer.close()
        let output = try PeerPaths.runPython("validate_capture.py", arguments: [path])
        #expect(String(decoding: output, as: UTF8.self) == "")
    }

    @Test("The schema refuses what is not a record")
    func refuses() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("siotap-schema-bad-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try #"{"seq":1,"ts":"2026-11-27T08:45:02Z","kind":"packet","dir":"c2s"}"#.appending("\n").write(toFile: path, atomically: true, encoding: .utf8)
        // Refused by the schema, not failing for another reason (no venv, no jsonschema): the
        // validator names the line and what is wrong with it.
        do {
            _ = try PeerPaths.runPython("validate_capture.py", arguments: [path])
            Issue.record("the validator accepted a packet record without its fields")
        } catch let failure as PeerPaths.PeerFailure {
            #expect(failure.output.hasPrefix("line 1: "), "\(failure): \(failure.output)")
        }
    }

    @Test("docs/capture-format.md lists every error code siotap writes, and no other")
    func errorCodesDocumented() throws {
        let text = try String(contentsOf: PeerPaths.root.appendingPathComponent("docs/capture-format.md"), encoding: .utf8)
        // The rows of the table under "Every code siotap writes": | `layer.code` | what |
        let section = try #require(text.firstRange(of: "Every code siotap writes").map { text[$0.upperBound...] })
        let table = section.split(separator: "\n## ", maxSplits: 1).first ?? section
        let documented = Set(table.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("| `"), let end = line.dropFirst(3).firstIndex(of: "`") else { return nil }
            return String(line[line.index(line.startIndex, offsetBy: 3)..<end])
        })
        let written = Set(ErrorCode.known.map(\.rawValue))
        #expect(written.count == ErrorCode.known.count, "a code named twice")
        #expect(documented.subtracting(written).sorted() == [], "documented, never written")
        #expect(written.subtracting(documented).sorted() == [], "written, not documented")
        // Every codec error has a code of its own: none collapse into another's.
        #expect(Set(EngineIOError.Code.allCases.map { ErrorCode($0) }).count == EngineIOError.Code.allCases.count)
        #expect(Set(SocketIOError.Code.allCases.map { ErrorCode($0) }).count == SocketIOError.Code.allCases.count)
        // And the schema's pattern takes each.
        let schema = try String(contentsOf: PeerPaths.root.appendingPathComponent("docs/capture.schema.json"), encoding: .utf8)
        let pattern = try #require(schema.firstMatch(of: /"code": \{ "type": "string", "pattern": "([^"]+)" \}/)?.1)
        let regex = try Regex(String(pattern).replacingOccurrences(of: "\\\\", with: "\\"))
        for code in written { #expect(code.wholeMatch(of: regex) != nil, "\(code) does not match the schema's pattern") }
    }
}

/// The seqs ``CaptureQueue/add(_:conn:)`` told, from many tasks.
private final class ToldSeqs: Sendable {
    let seqs = Mutex<[Int: String]>([:])
}

@Suite("Token sources")
struct TokenSourceTests {
    @Test("Every source reads back as the same case from the text a record gives it", arguments: [
        ("auth.token", TokenSource.auth(path: ".token")), ("auth", .auth(path: "")), ("auth[0].jwt", .auth(path: "[0].jwt")),
        ("query.token", .query(name: "token")), ("header.authorization", .authorizationHeader), ("cookie.session", .cookie(name: "session")),
        ("authority.x", .other("authority.x")), ("somewhere", .other("somewhere")),
    ])
    func roundTrip(text: String, source: TokenSource) {
        #expect(TokenSource(text) == source)
        #expect(source.description == text)
    }
}
