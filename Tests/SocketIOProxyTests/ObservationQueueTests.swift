import Dispatch
import Foundation
import SocketIOProtocol
import Synchronization
import Testing
import TrafficCapture
import TrafficObservation

@testable import SocketIOProxy

/// The proxy observes frames off its event loops (``ObservationQueue``): the records must be the
/// ones a tracker handling each event at once writes, in the same order, and the loops must be
/// able to pause while the observing thread is behind.
@Suite("Observation off the loops")
struct ObservationQueueTests {
    final class Sink: Sendable {
        let list = Mutex<[(conn: String?, body: CaptureRecord.Body, time: Double?)]>([])
        let inspected = Mutex<[String]>([])
        func add(_ body: CaptureRecord.Body, _ conn: String?, _ time: Double?) -> Int {
            list.withLock { list in
                list.append((conn, body, time))
                return list.count
            }
        }
        var lines: [String] {
            list.withLock { $0.map { "\($0.conn ?? "-") " + CaptureRecord(seq: 0, ts: "", conn: $0.conn, $0.body).jsonLine } }
        }
    }

    final class Flag: Sendable {
        private let value = Atomic<Bool>(false)
        var isSet: Bool { value.load(ordering: .relaxed) }
        func set() { value.store(true, ordering: .relaxed) }
    }

    static let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"

    /// Two polling sessions and a WebSocket-only one, interleaved: handshakes (one carrying a
    /// token), packets each way, a stray binary message held until the parser is known, an
    /// emitted error, close packets (one while a request is in flight, one not).
    func feed(_ tracker: ConnectionTracker) -> [ProxyConnection] {
        let upstream = ConnectionTracker.testUpstream
        func open(_ sid: String) -> [UInt8] {
            Array(#"0{"sid":"\#(sid)","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000}"#.utf8)
        }
        let first = tracker.beginRequest(sid: nil, engineVersion: .v4, upstream: upstream, path: "/socket.io/")
        let session = SessionRecord(url: "/socket.io/?EIO=4&transport=polling", path: "/socket.io/", eio: .v4, transport: .polling)
        tracker.observeHandshake(.pollingBody(open("A")), session: session, tokens: [(Self.token, .query(name: "token"))], on: first)
        tracker.end(first)
        let second = tracker.beginRequest(sid: nil, engineVersion: .v4, upstream: upstream, path: "/socket.io/")
        tracker.observeHandshake(.pollingBody(open("B")), session: session, tokens: [], on: second)
        tracker.end(second)
        let webSocket = tracker.open(engineVersion: .v4, upstream: upstream, path: "/socket.io/")
        tracker.emit(.session(SessionRecord(url: "/socket.io/?EIO=4&transport=websocket", path: "/socket.io/", eio: .v4, transport: .websocket)), on: webSocket)
        tracker.observe(.webSocket(.binary([1, 2, 3])), dir: .clientToServer, on: webSocket)
        tracker.observe(.webSocket(.text(String(decoding: open("W"), as: UTF8.self))), dir: .serverToClient, on: webSocket)
        #expect(tracker.beginRequest(sid: "A", engineVersion: .v4, upstream: upstream, path: "/socket.io/") === first)
        tracker.observe(.pollingBody(Array("40".utf8)), dir: .clientToServer, on: first)
        tracker.observe(.webSocket(.text("40")), dir: .clientToServer, on: webSocket)
        tracker.end(first)
        _ = tracker.beginRequest(sid: "B", engineVersion: .v4, upstream: upstream, path: "/socket.io/")
        tracker.observe(.pollingBody(Array(#"42["hello",1.50,"\u00e9"]"#.utf8)), dir: .clientToServer, on: second)
        tracker.emit(.error(ErrorRecord(dir: .serverToClient, code: .requestCut, message: "cut")), on: second)
        tracker.observe(.pollingBody(Array("1".utf8)), dir: .clientToServer, on: second)
        tracker.observe(.pollingBody(Array(#"42["late"]"#.utf8)), dir: .serverToClient, on: second)
        tracker.end(second)
        // A close packet ends the conn at once (nothing in flight): the socket's end comes after.
        tracker.observe(.webSocket(.text("1")), dir: .clientToServer, on: webSocket)
        tracker.close(webSocket, CloseRecord(by: .client, reason: "client closed the websocket"), waitingForActivity: true)
        return [first, second, webSocket]
    }

    @Test("Off the loops, the records are those written at once, in the same order; stamped when their events came")
    func sameRecords() async throws {
        let atOnce = Sink()
        let inline = ConnectionTracker(inspect: { job in atOnce.inspected.withLock { $0.append(job.token) } }, sink: atOnce.add)
        _ = feed(inline)
        let ordered = Sink()
        let tracker = ConnectionTracker(ordered: true, inspect: { job in ordered.inspected.withLock { $0.append(job.token) } }, sink: ordered.add)
        let before = CaptureClock.secondsSince1970()
        let conns = feed(tracker)
        // A handshake's sid is filed before its records are made: the next request finds the conn.
        #expect(tracker.connection(sid: "B") === conns[1])
        await tracker.flush()
        let after = CaptureClock.secondsSince1970()
        #expect(!atOnce.lines.isEmpty)
        #expect(ordered.lines == atOnce.lines)
        #expect(ordered.inspected.withLock { $0 } == [Self.token])
        #expect(atOnce.inspected.withLock { $0 } == [Self.token])
        let times = ordered.list.withLock { $0.map(\.time) }
        #expect(times.allSatisfy { $0 != nil && $0! >= before && $0! <= after })
        #expect(zip(times, times.dropFirst()).allSatisfy { $0! <= $1! }, "times never go back")
        #expect(atOnce.list.withLock { $0.allSatisfy { $0.time == nil } }, "at once, the capture stamps them")
    }

    @Test("The sweep closes a quiet polling conn in order with what came before it")
    func sweep() async {
        let sink = Sink()
        let tracker = ConnectionTracker(ordered: true, sink: sink.add)
        let connection = tracker.beginRequest(sid: nil, engineVersion: .v4)
        tracker.end(connection)
        tracker.emit(.error(ErrorRecord(dir: nil, code: .requestCut, message: "before")), on: connection)
        tracker.sweep(releaseAfter: 0, idleTimeout: 0, grace: 0)
        tracker.emit(.error(ErrorRecord(dir: nil, code: .requestCut, message: "after")), on: connection)
        await tracker.flush()
        let kinds = sink.list.withLock { $0.map(\.body) }.map { body -> String in
            switch body {
            case .error(let error): error.message
            case .close(let close): "close: " + close.reason
            default: "other"
            }
        }
        #expect(kinds == ["before", "close: no request for 0 s: the session has expired"])
    }

    @Test("Past its high water the queue pauses readers, and resumes them once down to half")
    func backPressure() async throws {
        let queue = ObservationQueue(highWater: 4, highWaterBytes: 1000)
        let gate = DispatchSemaphore(value: 0)
        let handled = Mutex(0)
        queue.handle { entries in
            gate.wait()
            handled.withLock { $0 += entries.count }
        }
        let connection = ConnectionTracker().open(engineVersion: .v4)
        queue.add(.begin(connection))
        let resumed = Mutex(false)
        #expect(queue.admit { resumed.withLock { $0 = true } }, "under the high water")
        // The observing thread is stuck on the first batch; the next ones wait.
        for _ in 0..<5 { queue.add(.begin(connection)) }
        #expect(!queue.admit { resumed.withLock { $0 = true } }, "past the high water in events")
        gate.signal()
        gate.signal()
        for _ in 0..<500 where !resumed.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(resumed.withLock { $0 })
        #expect(handled.withLock { $0 } == 6)
        await queue.flush()
        #expect(queue.waiting.events == 0 && queue.waiting.bytes == 0)
    }

    @Test("A flush returns under steady traffic (a proxy stopped under load): it waits for what came before it, not for quiet")
    func flushUnderTraffic() async throws {
        let queue = ObservationQueue()
        let handled = Mutex(0)
        queue.handle { entries in handled.withLock { $0 += entries.count } }
        let connection = ConnectionTracker().open(engineVersion: .v4)
        let stop = Flag()
        let producer = Thread {
            while !stop.isSet { queue.add(.begin(connection)) }
        }
        producer.start()
        while handled.withLock({ $0 }) < 1000 { try await Task.sleep(for: .milliseconds(5)) }
        let before = queue.waiting.events + handled.withLock { $0 }
        let flushed = Flag()
        Task {
            await queue.flush()
            flushed.set()
        }
        for _ in 0..<1000 where !flushed.isSet { try await Task.sleep(for: .milliseconds(10)) }
        #expect(flushed.isSet, "the flush waited for the traffic to stop")
        #expect(handled.withLock { $0 } >= before)
        stop.set()
        await queue.flush()
    }

    @Test("A frame past the queue's bytes pauses readers until it is handled")
    func bytesBound() async throws {
        let queue = ObservationQueue(highWater: 100, highWaterBytes: 1000)
        let gate = DispatchSemaphore(value: 0)
        queue.handle { _ in gate.wait() }
        let connection = ConnectionTracker().open(engineVersion: .v4)
        queue.add(.begin(connection), bytes: 2000)
        let resumed = Mutex(false)
        // Waiting or being handled, its bytes count until it is done.
        #expect(!queue.admit { resumed.withLock { $0 = true } })
        gate.signal()
        for _ in 0..<500 where !resumed.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(resumed.withLock { $0 })
        await queue.flush()
        #expect(queue.waiting.events == 0 && queue.waiting.bytes == 0)
    }
}
