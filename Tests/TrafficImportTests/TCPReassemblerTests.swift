import SocketIOProtocol
import Testing

@testable import TrafficImport

/// TCP streams put back in order from segments as a capture may hold them.
@Suite("TCP reassembly")
struct TCPReassemblerTests {
    static let client = Endpoint(address: "127.0.0.1", port: 50000)!
    static let server = Endpoint(address: "127.0.0.1", port: 3000)!

    func segment(_ from: Endpoint, seq: UInt32, _ text: String = "", flags: TCPSegment.Flags = [.ack], ack: UInt32 = 0, missing: Int = 0, time: Double = 1) -> TCPSegment {
        TCPSegment(source: from, destination: from == Self.client ? Self.server : Self.client, sequence: seq, acknowledgment: ack, flags: flags,
                   payload: Array(text.utf8), missing: missing, time: time)
    }

    /// What each side's stream reads as: data as text, gaps as `<gap N>`, ends as `<fin>`/`<rst>`.
    func streams(_ events: [(TCPReassembler.Side, TCPReassembler.Event)]) -> [TCPReassembler.Side: String] {
        var text: [TCPReassembler.Side: String] = [:]
        for (side, event) in events {
            switch event {
            case .data(let bytes, _): text[side, default: ""] += String(decoding: bytes, as: UTF8.self)
            case .gap(let length, _): text[side, default: ""] += "<gap \(length)>"
            case .end(let reset, _): text[side, default: ""] += reset ? "<rst>" : "<fin>"
            }
        }
        return text
    }

    func run(_ segments: [TCPSegment], finish: Bool = true) -> [TCPReassembler.Side: String] {
        var reassembler = TCPReassembler(first: segments[0])
        var events: [(TCPReassembler.Side, TCPReassembler.Event)] = []
        for segment in segments { events += reassembler.add(segment) }
        if finish { events += reassembler.finish(time: 9) }
        return streams(events)
    }

    @Test("A handshake, data both ways, FINs: the SYN's sender is the initiator, whoever comes first")
    func inOrder() {
        let c = Self.client, s = Self.server
        let result = run([
            segment(c, seq: 100, flags: [.syn]),
            segment(s, seq: 900, flags: [.syn, .ack], ack: 101),
            segment(c, seq: 101, "GET / HTTP/1.1\r\n\r\n", ack: 901),
            segment(s, seq: 901, "HTTP/1.1 200 OK\r\n\r\n", ack: 119),
            segment(c, seq: 119, flags: [.fin, .ack], ack: 920),
            segment(s, seq: 920, flags: [.fin, .ack], ack: 120),
        ])
        #expect(result[.initiator] == "GET / HTTP/1.1\r\n\r\n<fin>")
        #expect(result[.responder] == "HTTP/1.1 200 OK\r\n\r\n<fin>")
        // Captured from the SYN+ACK on, the roles are still right.
        var late = TCPReassembler(first: segment(s, seq: 900, flags: [.syn, .ack], ack: 101))
        #expect(late.initiator == c && late.responder == s)
        _ = late.add(segment(c, seq: 101, "x", ack: 901))
    }

    @Test("Out of order, retransmitted and overlapping segments: each byte once, in order, the first copy kept")
    func reordered() {
        let c = Self.client
        let result = run([
            segment(c, seq: 1, flags: [.syn]),
            segment(c, seq: 7, "world"),        // ahead of a hole
            segment(c, seq: 2, "hello"),        // fills it
            segment(c, seq: 2, "hello"),        // retransmitted whole
            segment(c, seq: 5, "LOworld!"),     // overlaps the end: only "!" is new
            segment(c, seq: 13, "?", flags: [.fin, .ack]),
        ])
        #expect(result[.initiator] == "helloworld!?<fin>")
    }

    @Test("Sequence numbers that wrap past 2^32")
    func wrapping() {
        let c = Self.client
        let result = run([
            segment(c, seq: UInt32.max - 2, flags: [.syn]),
            segment(c, seq: 1, "def"),
            segment(c, seq: UInt32.max - 1, "abc"),
        ])
        #expect(result[.initiator] == "abcdef")
    }

    @Test("Bytes the capture lost: a gap as soon as the peer's ACK proves them sent, and the stream goes on")
    func gapProvedByAck() {
        let c = Self.client, s = Self.server
        var reassembler = TCPReassembler(first: segment(c, seq: 1, flags: [.syn]))
        var events = reassembler.add(segment(c, seq: 1, flags: [.syn]))
        events += reassembler.add(segment(c, seq: 2, "abc"))
        // "defg" (seq 5) was not captured; then "hij" is, and the server acknowledges all.
        events += reassembler.add(segment(c, seq: 9, "hij"))
        #expect(streams(events)[.initiator] == "abc", "held behind the hole until something proves it lost")
        events += reassembler.add(segment(s, seq: 500, ack: 12))
        #expect(streams(events)[.initiator] == "abc<gap 4>hij")
    }

    @Test("A segment the capture cut (snaplen): its kept bytes, then a gap of the rest")
    func snaplen() {
        let c = Self.client
        let result = run([segment(c, seq: 1, flags: [.syn]), segment(c, seq: 2, "abc", missing: 5), segment(c, seq: 10, "z")])
        #expect(result[.initiator] == "abc<gap 5>z")
    }

    @Test("A hole nothing fills: taken as lost at the end of the capture, and when too much waits behind it")
    func unfilledHole() {
        let c = Self.client
        #expect(run([segment(c, seq: 1, flags: [.syn]), segment(c, seq: 2, "ab"), segment(c, seq: 10, "yz")])[.initiator] == "ab<gap 6>yz")
        let big = String(repeating: "x", count: TCPReassembler.maxPending + 1)
        let result = run([segment(c, seq: 1, flags: [.syn]), segment(c, seq: 12, big)], finish: false)
        #expect(result[.initiator] == "<gap 10>" + big)
    }

    @Test("A capture that starts mid-connection starts each stream at its first segment; a RST ends both at once")
    func midConnectionAndReset() {
        let c = Self.client, s = Self.server
        let result = run([
            segment(s, seq: 7000, "ponse"),
            segment(c, seq: 300, "GET /next HTTP/1.1\r\n\r\n"),
            segment(c, seq: 322, flags: [.rst]),
            segment(c, seq: 322, "after the reset"),
        ])
        #expect(result[.initiator] == "ponse")
        #expect(result[.responder] == "GET /next HTTP/1.1\r\n\r\n<rst>")
    }

    @Test("Any arrival order of many small segments, with retransmissions and overlaps, reads as the stream (a heap, not a sort per segment)", arguments: ["reversed", "shuffled", "interleaved"])
    func manySegmentsInAnyOrder(order: String) {
        let c = Self.client
        let text = (0..<20_000).map { String(UnicodeScalar(UInt8(97 + $0 % 26))) }.joined()
        let bytes = Array(text.utf8)
        var segments = (0..<bytes.count).map { index in
            segment(c, seq: 1001 + UInt32(index), String(decoding: [bytes[index]], as: UTF8.self))
        }
        var random = SplitMix64(seed: 7)
        switch order {
        case "reversed": segments.reverse()
        case "shuffled": segments.shuffle(using: &random)
        default:
            // Every segment twice, and some three bytes long overlapping their neighbours.
            segments = segments.enumerated().flatMap { index, one in
                index % 5 == 0 && index + 3 <= bytes.count
                    ? [one, segment(c, seq: 1001 + UInt32(index), String(decoding: bytes[index..<index + 3], as: UTF8.self))] : [one, one]
            }
            segments.shuffle(using: &random)
        }
        let syn = segment(c, seq: 1000, flags: [.syn])
        #expect(run([syn] + segments)[.initiator] == text)
    }
}
