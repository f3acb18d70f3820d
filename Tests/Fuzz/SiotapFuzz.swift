// libFuzzer entry points for the decoders that face the wire or the disk. Built only by
// scripts/fuzz.sh (SIOTAP_FUZZ=1 adds this target to the package); the target to run is picked by
// SIOTAP_FUZZ_TARGET. A crash, a trap or a broken round trip aborts, and libFuzzer keeps the input.
//
// SwiftPM links an executable's entry point as `<module>_main`, so libFuzzer's own `main` is not
// used: ours hands the command line to libFuzzer's driver.
import Dispatch
import Foundation
import JWTInspection
import LiveIntervention
import LoadGeneration
import SocketIOProtocol
import TrafficCapture
import TrafficDiagnosis
import TrafficObservation
import TrafficImport

enum FuzzTarget: String, CaseIterable {
    case enginePayload = "engine-payload"
    case socketIO = "socketio"
    case jwt
    case captureReader = "capture-reader"
    case trafficDecoder = "traffic-decoder"
    case webSocketStream = "websocket-stream"
    case tcpReassembly = "tcp-reassembly"
    case httpStream = "http-stream"
    case msgpack
    case har
    case httpFraming = "http-framing"
    case diagnoser
    case gate
    case hlog
}

let target: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["SIOTAP_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTarget(rawValue: name) else {
        FileHandle.standardError.write(Data("SIOTAP_FUZZ_TARGET must be one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
        exit(2)
    }
    return target
}()

// A key, so the inspector goes all the way to the signature and time checks.
let inspector = JWTInspector(key: .secret("fuzz-secret-long-enough-for-hs256!!"))

@_silgen_name("LLVMFuzzerRunDriver")
func runLibFuzzer(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@_cdecl("siotap_fuzz_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return runLibFuzzer(&argc, &argv) { data, size in fuzzOne(data, size) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    switch target {
    case .enginePayload: fuzzEnginePayload(input)
    case .hlog: fuzzHistogramLog(input)
    case .socketIO: fuzzSocketIO(input)
    case .jwt: fuzzJWT(input)
    case .captureReader: fuzzCaptureReader(input)
    case .trafficDecoder: fuzzTrafficDecoder(input)
    case .webSocketStream: fuzzWebSocketStream(input)
    case .tcpReassembly: fuzzTCPReassembly(input)
    case .httpStream: fuzzHTTPStream(input)
    case .msgpack: fuzzMsgPack(input)
    case .har: fuzzHAR(input)
    case .httpFraming: fuzzHTTPFraming(input)
    case .diagnoser: fuzzDiagnoser(input)
    case .gate: fuzzGate(input)
    }
    return 0
}

/// The first byte picks the Engine.IO version; the rest is a polling body, fed whole and in two
/// chunks (the streaming decoder must agree with itself), then as one WebSocket frame.
func fuzzEnginePayload(_ input: [UInt8]) {
    guard let first = input.first else { return }
    let version: EngineIOVersion = first & 1 == 0 ? .v4 : .v3
    let body = Array(input.dropFirst())
    let whole = try? EngineIOCodec.decodePayload(body, version: version)
    var streaming = PollingPayloadDecoder(version: version)
    let split = body.isEmpty ? 0 : Int(first >> 1) % (body.count + 1)
    let chunked: [EnginePacket]? = {
        do {
            var packets = try streaming.feed(body[..<split])
            packets += try streaming.feed(body[split...])
            packets += try streaming.finish()
            return packets
        } catch { return nil }
    }()
    precondition(whole == chunked, "the streaming decoder split at \(split) disagrees with the whole-body decoder")
    if let packets = whole {
        // What we decoded, encoded again, decodes to the same packets.
        for binaryFraming in [false, true] {
            let encoded = EngineIOCodec.encodePayload(packets, version: version, binaryFraming: binaryFraming).body
            let again = try? EngineIOCodec.decodePayload(encoded, version: version)
            precondition(again == packets, "payload round trip (binary framing \(binaryFraming)) changed the packets")
        }
    }
    _ = try? EngineIOCodec.decode(.binary(body), version: version)
    _ = try? EngineIOCodec.decodeTextFrame(body, version: version)
}

/// Any bytes: a value that decodes encodes to bytes that decode to the same value (floats by their
/// bits: NaN is not equal to itself), and a Socket.IO msgpack packet that decodes survives its
/// own encoding. The same bytes as a msgpack session's first message must not trap the decoder.
func fuzzMsgPack(_ input: [UInt8]) {
    if let value = try? MsgPackCodec.decode(input) {
        let again = try? MsgPackCodec.decode(MsgPackCodec.encode(value))
        precondition(again.map { MsgPackCodec.encode($0) == MsgPackCodec.encode(value) } ?? false, "msgpack round trip changed the value")
        _ = value.jsonValue.jsonText
    }
    if let packet = try? SocketIOMsgPack.decode(input) {
        let again = try? SocketIOMsgPack.decode(SocketIOMsgPack.encode(packet))
        precondition(again != nil, "a msgpack packet's own encoding does not decode")
    }
    var decoder = TrafficDecoder(engineVersion: .v4)
    _ = decoder.decode(.webSocket(.binary(input)), dir: .clientToServer)
    _ = decoder.decode(.webSocket(.binary(input)), dir: .serverToClient)
}

/// The first byte picks the protocol version; NUL bytes split the rest into a packet string and
/// binary attachments.
func fuzzSocketIO(_ input: [UInt8]) {
    guard let first = input.first else { return }
    let version: SocketIOVersion = first & 1 == 0 ? .v5 : .v4
    let pieces = input.dropFirst().split(separator: 0, omittingEmptySubsequences: false)
    var decoder = SocketIODecoder(version: version)
    var decoded: SocketPacket?
    do {
        decoded = try decoder.decode(text: String(decoding: pieces[0], as: UTF8.self))
        for attachment in pieces.dropFirst() where decoded == nil {
            decoded = try decoder.decode(binary: Array(attachment))
        }
    } catch { return }
    guard let packet = decoded else { return }
    let (text, attachments) = SocketIOCodec.encode(packet)
    // Placeholders may name one attachment several times; encoding writes each binary once per
    // place, and past the limit of attachments the decoder refuses the result, as the reference
    // decoder does (found by this target: 12 from 2).
    guard attachments.count <= SocketIOCodec.defaultMaxAttachments else { return }
    var again = SocketIODecoder(version: version)
    do {
        var redecoded = try again.decode(text: text)
        for attachment in attachments where redecoded == nil { redecoded = try again.decode(binary: attachment) }
        // Encoding numbers attachments in the order the data holds them and leaves out any no
        // placeholder refers to (the reference parser drops those too): compare what they carry.
        var expected = packet
        expected.attachments = []
        redecoded?.attachments = []
        precondition(redecoded == expected, "round trip changed \(packet) into \(String(describing: redecoded)) via \(text)")
    } catch {
        preconditionFailure("our own encoding of \(packet) does not decode: \(error) (\(text))")
    }
}

func fuzzJWT(_ input: [UInt8]) {
    let token = String(decoding: input, as: UTF8.self)
    _ = JWTText.looksLikeJWT(token)
    _ = JWTText.parts(of: token)
    _ = JWTCandidate.token(in: token)
    let done = DispatchSemaphore(value: 0)
    Task {
        _ = await inspector.inspect(token, now: 1_800_000_000)
        done.signal()
    }
    done.wait()
}

/// Every record the reader returns writes back to a line that reads as the same record.
func fuzzCaptureReader(_ input: [UInt8]) {
    for entry in CaptureReader(bytes: input) {
        guard case .record(let record) = entry else { continue }
        do {
            let again = try CaptureRecord(jsonLine: record.jsonLine)
            precondition(again == record, "a record changed through its own JSON line: \(record.jsonLine)")
        } catch {
            preconditionFailure("a record's own JSON line does not read back: \(error) \(record.jsonLine)")
        }
    }
}

/// The diagnoser on whatever records a file holds (`siotap diagnose` of a stranger's capture):
/// nothing traps, each diagnosis is a catalogued code at its catalogued severity, proven by
/// records it was given, and writes as a line that reads back.
func fuzzDiagnoser(_ input: [UInt8]) {
    var diagnoser = Diagnoser()
    var seen = Set<Int>()
    var found: [Diagnoser.Diagnosis] = []
    for entry in CaptureReader(bytes: input) {
        guard case .record(let record) = entry else { continue }
        seen.insert(record.seq)
        found += diagnoser.take(record)
    }
    found += diagnoser.finish()
    let catalog = Dictionary(uniqueKeysWithValues: DiagnosisCatalog.all.map { ($0.code, $0.severity) })
    for diagnosis in found {
        precondition(catalog[diagnosis.record.code] == diagnosis.record.severity, "an uncatalogued diagnosis: \(diagnosis)")
        precondition(!diagnosis.record.message.isEmpty && diagnosis.record.evidence.allSatisfy(seen.contains), "unproven: \(diagnosis)")
        let line = CaptureRecord(seq: 1, ts: "2026-12-05T12:00:00.000000Z", conn: diagnosis.conn, .diagnosis(diagnosis.record)).jsonLine
        precondition((try? CaptureRecord(jsonLine: line))?.body == .diagnosis(diagnosis.record), "a diagnosis does not read back: \(line)")
    }
}

/// The proxy's observer on arbitrary frames: the first byte picks version, transport, direction
/// and a small attachment size limit (so that its path is reached); its records must all write as
/// lines that read back.
func fuzzTrafficDecoder(_ input: [UInt8]) {
    guard let first = input.first else { return }
    var decoder = TrafficDecoder(
        engineVersion: first & 1 == 0 ? .v4 : .v3, maxAttachmentBytes: first & 2 == 0 ? SocketIOCodec.defaultMaxAttachmentBytes : 16
    )
    let dir: Direction = first & 4 == 0 ? .clientToServer : .serverToClient
    for piece in input.dropFirst().split(separator: 0xFE, omittingEmptySubsequences: false) {
        let frame: TrafficDecoder.Frame
        switch first & 0b11000 {
        case 0: frame = .pollingBody(Array(piece))
        case 0b01000: frame = .webSocket(.binary(Array(piece)))
        default: frame = .webSocket(.text(String(decoding: piece, as: UTF8.self)))
        }
        for body in decoder.decode(frame, dir: dir).records {
            let record = CaptureRecord(conn: "c1", body)
            do {
                _ = try CaptureRecord(jsonLine: record.jsonLine)
            } catch {
                preconditionFailure("a decoded record does not read back: \(error) \(record.jsonLine)")
            }
        }
    }
}

/// The first byte sets the message size limit (0-255 bytes, so the oversized path is reached) and
/// where to cut; the rest is the raw bytes of one direction of a WebSocket. Read whole, cut in two
/// and byte by byte, the events must be the same.
func fuzzWebSocketStream(_ input: [UInt8]) {
    guard let first = input.first else { return }
    let stream = Array(input.dropFirst())
    func events(_ chunks: [ArraySlice<UInt8>]) -> [WebSocketStreamReader.Event] {
        var reader = WebSocketStreamReader(maxMessageSize: Int(first))
        var events: [WebSocketStreamReader.Event] = []
        for chunk in chunks { reader.read(Array(chunk), into: &events) }
        return events
    }
    let whole = events([stream[...]])
    let cut = stream.isEmpty ? 0 : Int(first) % (stream.count + 1)
    precondition(events([stream[..<cut], stream[cut...]]) == whole, "a cut changed the events")
    if stream.count <= 4096 {
        precondition(events(stream.indices.map { stream[$0...$0] }) == whole, "byte by byte changed the events")
    }
    // The frame splitter (the proxy with --fault) on the same bytes, whole and cut: its frames and
    // what it kept are the input byte for byte, and bytes that break a frame's own rules stop the
    // reader as well (they read frame headers through the same code).
    func split(_ chunks: [ArraySlice<UInt8>]) -> (frames: [WebSocketFrameSplitter.Frame], rest: [UInt8], failure: WebSocketFrameSplitter.Failure?) {
        var splitter = WebSocketFrameSplitter(maxFrameSize: Int(first) * 64)
        var frames: [WebSocketFrameSplitter.Frame] = []
        for chunk in chunks { frames += Array(chunk).withUnsafeBytes { splitter.read($0) } }
        let failure = splitter.failure
        return (frames, splitter.takeRemainder(), failure)
    }
    let (frames, rest, failure) = split([stream[...]])
    precondition(frames.flatMap(\.raw) + rest == stream, "the frames and the rest are not the input")
    let cutSplit = split([stream[..<cut], stream[cut...]])
    // Once failed, it keeps no later bytes: the rest is the same only when it did not fail.
    precondition(cutSplit.frames == frames && cutSplit.failure == failure && (failure != nil || cutSplit.rest == rest), "a cut changed the frames")
    if case .malformed(let reason) = failure {
        precondition(whole.contains { if case .malformed = $0 { true } else { false } }, "the splitter found \(reason), the reader nothing")
    }
}

/// Segments of one connection, each as: a byte of flags and side, two of sequence offset, two of
/// acknowledgment offset, a length byte and that many bytes. Whatever they are, each side's stream
/// advances in order: never more than the segments covered, every data byte one a segment carried
/// at that place.
func fuzzTCPReassembly(_ input: [UInt8]) {
    let client = Endpoint(address: "10.0.0.1", port: 1)!, server = Endpoint(address: "10.0.0.2", port: 2)!
    var segments: [TCPSegment] = []
    var index = 0
    while index + 6 <= input.count {
        let control = input[index]
        let sequence = UInt32(input[index + 1]) << 8 | UInt32(input[index + 2])
        let acknowledgment = UInt32(input[index + 3]) << 8 | UInt32(input[index + 4])
        let length = Int(input[index + 5])
        let payload = Array(input[min(input.count, index + 6)..<min(input.count, index + 6 + length)])
        index += 6 + length
        let fromClient = control & 0x80 == 0
        segments.append(TCPSegment(
            source: fromClient ? client : server, destination: fromClient ? server : client,
            sequence: 1000 &+ sequence, acknowledgment: 1000 &+ acknowledgment, flags: TCPSegment.Flags(rawValue: control & 0x17),
            payload: payload, missing: Int(control >> 5 & 1), time: Double(index)
        ))
    }
    guard let first = segments.first else { return }
    var reassembler = TCPReassembler(first: first)
    var events: [(TCPReassembler.Side, TCPReassembler.Event)] = []
    for segment in segments { events += reassembler.add(segment) }
    events += reassembler.finish(time: 0)
    var delivered: [TCPReassembler.Side: Int] = [:]
    for (side, event) in events {
        switch event {
        case .data(let bytes, _): delivered[side, default: 0] += bytes.count
        case .gap(let length, _):
            precondition(length > 0, "an empty gap")
            delivered[side, default: 0] += length
        case .end: break
        }
    }
    let carried = segments.reduce(0) { $0 + $1.payload.count + $1.missing }
    for (_, total) in delivered { precondition(total <= carried + 70_000, "a stream longer than all the segments could make it") }
}

/// Bytes as both sides of an HTTP connection (a NUL splits client from server), fed whole and
/// in two pieces cut where the first byte says: the conversation must not depend on the cuts.
func fuzzHTTPStream(_ input: [UInt8]) {
    guard let first = input.first else { return }
    let parts = input.dropFirst().split(separator: 0, maxSplits: 1, omittingEmptySubsequences: false)
    let clientBytes = Array(parts[0]), serverBytes = parts.count > 1 ? Array(parts[1]) : []
    func run(cut: Int?, fromTheStart: Bool = true) -> [HTTPConversation.Event] {
        var conversation = HTTPConversation(maxMessageSize: 1 << 16, fromTheStart: fromTheStart)
        var events: [HTTPConversation.Event] = []
        for (side, bytes) in [(TCPReassembler.Side.initiator, clientBytes), (.responder, serverBytes)] {
            let at = cut.map { bytes.isEmpty ? 0 : $0 % (bytes.count + 1) } ?? bytes.count
            for piece in [Array(bytes[..<at]), Array(bytes[at...])] where !piece.isEmpty {
                events += conversation.receive(.data(piece, time: 0), from: side)
            }
        }
        return events
    }
    let whole = run(cut: nil)
    let cut = run(cut: Int(first))
    // Problems may be worded with what the reader had at hand; what was read must agree.
    let read = { (events: [HTTPConversation.Event]) in events.filter { if case .problem = $0 { false } else { true } } }
    precondition(read(whole) == read(cut), "cutting the streams at \(first) changed what was read")
    // Joined mid-stream, where a segment may prove a WebSocket's frame boundary: the cuts do
    // change what is read then (a proof is per segment), but nothing may crash or hang.
    _ = run(cut: Int(first), fromTheStart: false)
}

/// A HAR file's bytes, whole and cut in two where the first byte says: the scanner finds the same
/// entries either way; each entry's events go through their disk form and back unchanged.
func fuzzHAR(_ input: [UInt8]) {
    guard let first = input.first else { return }
    let bytes = Array(input.dropFirst())
    var whole = HAREntryScanner()
    guard let entries = try? whole.feed(bytes) else { return }
    let cut = bytes.isEmpty ? 0 : Int(first) % (bytes.count + 1)
    var pieces = HAREntryScanner()
    let cutEntries = (try? pieces.feed(Array(bytes[..<cut]))).flatMap { head in (try? pieces.feed(Array(bytes[cut...]))).map { head + $0 } }
    precondition(cutEntries == entries, "the entries depend on where the bytes were cut")
    for (index, entry) in entries.enumerated() {
        guard let events = try? HARImport.events(ofEntry: entry, index: index) else { continue }
        for (_, event, flow) in events {
            var encoded: [UInt8] = []
            HAREventCoding.encode(event, flow: flow, into: &encoded)
            guard let (back, backFlow) = HAREventCoding.decode(encoded) else { preconditionFailure("an event's disk form does not read back") }
            precondition(back == event && backFlow == flow, "an event changed through its disk form")
        }
    }
}

/// The byte relay's framing on hostile bytes, cut in two reads where the first byte says: the end
/// of a head is found at the same place whole or resumed read by read; a parsed head's ranges lie
/// inside it, each field's name and value inside its line; a chunked body read whole or in two
/// pieces gives the same data, the same end, or fails both ways.
func fuzzHTTPFraming(_ input: [UInt8]) {
    guard let first = input.first else { return }
    let bytes = Array(input.dropFirst())
    let cut = bytes.isEmpty ? 0 : Int(first) % (bytes.count + 1)
    let whole = bytes.withUnsafeBytes { HTTPFraming.headEnd(in: $0, from: 0) }
    var resumed = Array(bytes[..<cut]).withUnsafeBytes { HTTPFraming.headEnd(in: $0, from: 0) }
    if resumed == nil { resumed = bytes.withUnsafeBytes { HTTPFraming.headEnd(in: $0, from: cut - 3) } }
    precondition(whole == resumed, "the head's end moved with the read cut at \(cut): \(String(describing: whole)) against \(String(describing: resumed))")
    if let end = whole {
        bytes.withUnsafeBytes { raw in
            guard let head = HTTPFraming.Head.parse(raw, end: end) else { return }
            for range in [head.first, head.second, head.third] { precondition(range.lowerBound >= 0 && range.upperBound <= end) }
            // The target as the proxy routes it: its query scanned in place agrees with the pieces
            // split apart and decoded one by one, and the path ends with its slash.
            let target = String(decoding: UnsafeRawBufferPointer(rebasing: raw[head.second]), as: UTF8.self)
            if let request = EngineRequest.traffic(target, under: "/socket.io") {
                let query = target.utf8.split(separator: UInt8(ascii: "?"), maxSplits: 1, omittingEmptySubsequences: false).dropFirst().first ?? []
                let expected = query.split(separator: UInt8(ascii: "&")).map { piece -> [String] in
                    let parts = piece.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
                    return parts.map { QueryString.percentDecode(String(decoding: $0, as: UTF8.self)) } + (parts.count == 1 ? [""] : [])
                }
                precondition(request.query.map { [$0.name, $0.value] } == expected, "the query scanned in place differs from its pieces")
                precondition(request.path.utf8.last == UInt8(ascii: "/"))
            }
            for field in head.fields {
                precondition(field.line.lowerBound >= head.fieldsStart && field.line.upperBound <= end)
                precondition(field.name.lowerBound == field.line.lowerBound && field.name.upperBound < field.line.upperBound)
                precondition(field.value.lowerBound > field.name.upperBound && field.value.upperBound <= field.line.upperBound)
                _ = HTTPFraming.contentLength(raw, field)
                _ = HTTPFraming.tokens(raw, field)
                _ = HTTPFraming.isHopByHop(raw, field)
            }
        }
    }
    func chunked(_ pieces: [[UInt8]]) -> (data: [UInt8], consumed: Int, done: Bool)? {
        var reader = HTTPFraming.ChunkedReader()
        var data: [UInt8] = []
        var consumed = 0
        for piece in pieces where !reader.isDone {
            do {
                consumed += try piece.withUnsafeBytes { raw in try reader.read(raw) { data += raw[$0] } }
            } catch {
                return nil
            }
        }
        return (data, consumed, reader.isDone)
    }
    let read = chunked([bytes]), split = chunked([Array(bytes[..<cut]), Array(bytes[cut...])])
    // A failure in a part never reached whole is no failure: compare only what both read.
    if let read, let split, read.done || split.done {
        precondition(read.data == split.data && read.consumed == split.consumed, "the chunked body read differently cut at \(cut)")
    }
    if let read, read.done { precondition(read.consumed <= bytes.count) }
}

/// A conn's gate under any sequence of packets, holds and decisions (the bytes pick them): each
/// direction's packets go on exactly once, in the order they came, but for those dropped or
/// replaced by an edit; the held list is what is left undecided; the proxy's ack ids answer once.
func fuzzGate(_ input: [UInt8]) {
    var gate = ConnectionGate()
    var next = 1
    // Per direction, what must come out, in order: each packet's text, or nil once dropped.
    var expected = PerDirection<[(seq: Int, out: [String]?, held: Bool)]>([])
    var released = PerDirection<[String]>([])
    var asked: [UInt64] = []
    var index = 0
    func byte() -> UInt8? {
        guard index < input.count else { return nil }
        defer { index += 1 }
        return input[index]
    }
    while let op = byte() {
        let dir: Direction = op & 0x80 == 0 ? .clientToServer : .serverToClient
        switch op & 0x7 {
        case 0, 1:
            let seq = next
            next += 1
            let hold = op & 0x7 == 1
                ? ConnectionGate.Hold(breakpoint: "b1", by: .api, since: 0, record: PacketRecord(dir: dir, transport: .websocket, type: .event, nsp: "/", raw: "\(seq)"))
                : nil
            let admission = gate.admit([.message("\(seq)")], seq: seq, dir: dir, hold: hold)
            if case .pass = admission {
                precondition(hold == nil && !expected[dir].contains { $0.held }, "passed while held")
                released[dir].append("\(seq)")
            } else {
                expected[dir].append((seq, ["\(seq)"], hold != nil))
            }
        case 2, 3, 4:
            guard let pick = byte(), !expected[dir].isEmpty else { continue }
            let target = expected[dir][Int(pick) % expected[dir].count]
            let resolution: ConnectionGate.Resolution = op & 0x7 == 2 ? .release : op & 0x7 == 3 ? .drop : .replace([.message("edit\(target.seq)")])
            let result = gate.resolve(seq: target.seq, resolution)
            guard target.held else {
                precondition(result == nil, "a packet that was not held was decided")
                continue
            }
            let at = expected[dir].firstIndex { $0.seq == target.seq }!
            expected[dir][at].held = false
            switch resolution {
            case .drop: expected[dir][at].out = nil
            case .replace: expected[dir][at].out = ["edit\(target.seq)"]
            case .release: break
            }
            precondition(result != nil, "a held packet could not be decided")
            // What is free now: the queue's front up to the next held packet.
            let free = expected[dir].prefix { !$0.held }
            let want = free.flatMap { $0.out ?? [] }
            precondition(result!.released.compactMap(\.text) == want, "released \(result!.released) instead of \(want)")
            released[dir] += want
            expected[dir].removeFirst(free.count)
        case 5:
            let id = gate.reserveAckID()
            precondition(id >= ConnectionGate.firstInjectedAckID && !asked.contains(id), "an ack id reused")
            gate.expect(ackID: id, emitSeq: 1, dir: dir)
            asked.append(id)
        case 6:
            guard let pick = byte(), !asked.isEmpty else { continue }
            let id = asked[Int(pick) % asked.count]
            _ = gate.answer(ackID: id, dir: dir)
            precondition(gate.answer(ackID: id, dir: dir) == nil || dir == .clientToServer, "answered twice")
        default:
            let held = gate.held
            let waiting = [Direction.clientToServer, .serverToClient].flatMap { dir in expected[dir].filter(\.held).map(\.seq) }
            precondition(held.map(\.seq).sorted() == waiting.sorted(), "held \(held.map(\.seq)), expected \(waiting)")
        }
    }
}

/// `siotap load merge` on a stranger's file: first byte 0, the rest is a log's text, merged (with
/// itself, as two workers); otherwise the rest is a histogram's counts as written before
/// compression, decoded, and a histogram that reads must come back the same through siotap's encoding.
func fuzzHistogramLog(_ input: [UInt8]) {
    guard let mode = input.first else { return }
    let rest = Array(input.dropFirst())
    if mode == 0 {
        let text = String(decoding: rest, as: UTF8.self)
        guard let merged = try? HistogramLog.merge([("a", text), ("b", text)]) else { return }
        precondition(merged.snapshot.acks.count <= LoadMetrics.largestNameCount && merged.snapshot.events.count <= LoadMetrics.largestNameCount)
        return
    }
    guard let histogram = try? HistogramLog.decode(HistogramLog.envelope(rest)) else { return }
    let again = try! HistogramLog.decode(HistogramLog.encode(histogram))
    precondition(again.totalCount == histogram.totalCount && again.maxRecorded == histogram.maxRecorded)
}
