import SocketIOProtocol
import Testing
import TrafficCapture

@testable import TrafficImport

/// Import's conns end as the proxy's do (one recorder for both): a close waits for the polls in
/// flight, a dropped poll ends its conn, and what it follows per TCP connection is bounded.
@Suite("Session assembly")
struct SessionAssemblerTests {
    static let flow = SessionAssembler.Flow(client: nil, server: "127.0.0.1:3000", entry: 1)
    static let poll = SessionAssembler.Flow(client: nil, server: "127.0.0.1:3000", entry: 2)
    static let base = "/socket.io/?EIO=4&transport=polling"

    func head(_ method: String, _ target: String) -> HTTPConversation.Head { HTTPConversation.Head(method: method, target: target, status: 0, headers: []) }
    func answer(_ status: Int = 200) -> HTTPConversation.Head { HTTPConversation.Head(method: "", target: "", status: status, headers: []) }

    /// A session opened with sid S, its namespace connected; returns the records so far.
    func opened(_ assembler: inout SessionAssembler) -> [CaptureRecord.Body] {
        var records: [CaptureRecord.Body] = []
        let handshake = head("GET", Self.base)
        records += assembler.take(.request(handshake, body: [], time: 1), on: Self.flow).records.map(\.body)
        let open = #"0{"sid":"S","upgrades":[],"pingInterval":25000,"pingTimeout":20000}"#
        records += assembler.take(.response(answer(), body: Array(open.utf8), request: handshake, time: 1), on: Self.flow).records.map(\.body)
        let connect = head("POST", Self.base + "&sid=S")
        records += assembler.take(.request(connect, body: Array("40".utf8), time: 2), on: Self.flow).records.map(\.body)
        records += assembler.take(.response(answer(), body: Array("ok".utf8), request: connect, time: 2), on: Self.flow).records.map(\.body)
        return records
    }

    func closes(_ records: [CaptureRecord.Body]) -> [CloseRecord] {
        records.compactMap { if case .close(let close) = $0 { close } else { nil } }
    }

    @Test("A close packet's close waits for the poll still out, whose answer is recorded first")
    func closeWaits() {
        var assembler = SessionAssembler(parser: .json)
        var records = opened(&assembler)
        let get = head("GET", Self.base + "&sid=S")
        records += assembler.take(.request(get, body: [], time: 3), on: Self.poll).records.map(\.body)
        let bye = head("POST", Self.base + "&sid=S")
        records += assembler.take(.request(bye, body: Array("1".utf8), time: 4), on: Self.flow).records.map(\.body)
        records += assembler.take(.response(answer(), body: Array("ok".utf8), request: bye, time: 4), on: Self.flow).records.map(\.body)
        #expect(closes(records).isEmpty, "the GET is still out")
        records += assembler.take(.response(answer(), body: Array("6".utf8), request: get, time: 5), on: Self.poll).records.map(\.body)
        #expect(closes(records).map(\.reason) == ["close packet"])
        guard case .close? = records.last, case .engine(let noop)? = records.dropLast().last else {
            Issue.record("\(records)")
            return
        }
        #expect(noop.type == .noop)
    }

    @Test("A client that drops its poll ends the session, as its server does")
    func droppedPoll() {
        var assembler = SessionAssembler(parser: .json)
        var records = opened(&assembler)
        records += assembler.take(.request(head("GET", Self.base + "&sid=S"), body: [], time: 3), on: Self.poll).records.map(\.body)
        records += assembler.take(.ended(fromClient: true, reset: false, time: 4), on: Self.poll).records.map(\.body)
        #expect(closes(records).map(\.reason) == ["client went away mid-request"])
        #expect(!records.contains { if case .error = $0 { true } else { false } }, "how clients leave: a close, no error")
    }

    @Test("Unanswered requests on one TCP connection are followed up to a bound, however many come")
    func bounded() {
        var assembler = SessionAssembler(parser: .json)
        _ = opened(&assembler)
        for index in 0..<10_000 {
            _ = assembler.take(.request(head("POST", Self.base + "&sid=S"), body: Array("2".utf8), time: 3 + Double(index) / 1e4), on: Self.poll)
        }
        #expect(assembler.unanswered(on: Self.poll) == SessionAssembler.pipelineLimit)
        let closed = assembler.take(.ended(fromClient: false, reset: false, time: 5), on: Self.poll)
        #expect(assembler.unanswered(on: Self.poll) == 0)
        #expect(closes(closed.records.map(\.body)).isEmpty, "the server's end of a connection ends no session")
    }
}
