import SocketIOProtocol
import Testing
import TrafficCapture

@testable import LoadGeneration

/// The virtual user's rules, clock in hand: no sockets, every instant given.
@Suite("A virtual user's play")
struct VirtualUserMachineTests {
    typealias Action = VirtualUserMachine.Action

    /// A conn that joins `/` and `/admin` back to back, asks `ask` with an ack at 1 s, and at 2 s
    /// says `hello` in `/admin`, which the server answers with `welcome`, then leaves `/admin`.
    static let capture = """
        {"seq":1,"ts":"2027-01-15T08:00:00.000000Z","kind":"session","conn":"c1","url":"/socket.io/?EIO=4&transport=websocket","eio":4,"transport":"websocket"}
        {"seq":2,"ts":"2027-01-15T08:00:00.001000Z","kind":"packet","conn":"c1","dir":"c2s","transport":"websocket","type":"CONNECT","nsp":"/","raw":"0"}
        {"seq":3,"ts":"2027-01-15T08:00:00.003000Z","kind":"packet","conn":"c1","dir":"c2s","transport":"websocket","type":"CONNECT","nsp":"/admin","raw":"0/admin,"}
        {"seq":4,"ts":"2027-01-15T08:00:00.004000Z","kind":"packet","conn":"c1","dir":"s2c","transport":"websocket","type":"CONNECT","nsp":"/","data":{"sid":"a"},"raw":"0{\\"sid\\":\\"a\\"}"}
        {"seq":5,"ts":"2027-01-15T08:00:00.005000Z","kind":"packet","conn":"c1","dir":"s2c","transport":"websocket","type":"CONNECT","nsp":"/admin","data":{"sid":"b"},"raw":"0/admin,{\\"sid\\":\\"b\\"}"}
        {"seq":6,"ts":"2027-01-15T08:00:01.001000Z","kind":"packet","conn":"c1","dir":"c2s","transport":"websocket","type":"EVENT","nsp":"/","id":7,"event":"ask","args":[1],"raw":"27[\\"ask\\",1]"}
        {"seq":7,"ts":"2027-01-15T08:00:01.002000Z","kind":"packet","conn":"c1","dir":"s2c","transport":"websocket","type":"ACK","nsp":"/","id":7,"args":[2],"raw":"37[2]"}
        {"seq":8,"ts":"2027-01-15T08:00:02.001000Z","kind":"packet","conn":"c1","dir":"c2s","transport":"websocket","type":"EVENT","nsp":"/admin","event":"hello","args":[],"raw":"2/admin,[\\"hello\\"]"}
        {"seq":9,"ts":"2027-01-15T08:00:02.002000Z","kind":"packet","conn":"c1","dir":"s2c","transport":"websocket","type":"EVENT","nsp":"/admin","event":"welcome","args":[],"raw":"2/admin,[\\"welcome\\"]"}
        {"seq":10,"ts":"2027-01-15T08:00:02.003000Z","kind":"packet","conn":"c1","dir":"c2s","transport":"websocket","type":"DISCONNECT","nsp":"/admin","raw":"1/admin,"}

        """

    static func script() throws -> UserScript {
        var records: [CaptureRecord] = []
        for entry in CaptureReader(bytes: Array(capture.utf8)) {
            guard case .record(let record) = entry else { throw Unreadable() }
            records.append(record)
        }
        let scripts = LoadRunner.scripts(records, pick: nil)
        try #require(scripts.count == 1)
        return UserScript(scripts[0], causes: LoadRunner.causes(records))
    }

    struct Unreadable: Error {}

    let begin = ContinuousClock.now
    func at(_ milliseconds: Int) -> ContinuousClock.Instant { begin + .milliseconds(milliseconds) }

    func machine(speed: Double = 1, timeout: Duration = .seconds(5)) throws -> VirtualUserMachine {
        VirtualUserMachine(script: try Self.script(), tokens: nil, begin: begin, speed: speed, timeout: timeout)
    }

    static func sent(_ actions: [Action]) -> [String] {
        actions.compactMap { action in
            guard case .send(let packet) = action else { return nil }
            return "\(packet.type.name) \(packet.namespace) \(packet.eventName ?? "")\(packet.ackID.map { " #\($0)" } ?? "")"
        }
    }

    static func measured(_ actions: [Action]) -> [String] {
        actions.compactMap { action in
            switch action {
            case .send: nil
            case .connected(let duration): "connected \(duration)"
            case .ack(let name, let duration): "ack \(name) \(duration)"
            case .event(let name, let duration): "event \(name) \(duration)"
            case .received(let name): "received \(name)"
            case .error(let kind): "error \(kind.rawValue)"
            case .finish(let wasConnected, let done): "finish connected=\(wasConnected) done=\(done)"
            }
        }
    }

    @Test("Packets go at their recorded times over --speed; acks and caused events are timed; the play ends when nothing is waited for")
    func plays() throws {
        var user = try machine(speed: 2)
        var actions: [Action] = []
        #expect(user.wake == nil, "nothing goes before the session is open")
        user.open(at: at(0), into: &actions)
        #expect(Self.sent(actions) == ["CONNECT / "])
        #expect(user.wake == at(1), "the second CONNECT was recorded 2 ms after the first: 1 ms at speed 2")
        actions = []
        user.tick(at: at(1), into: &actions)
        #expect(Self.sent(actions) == ["CONNECT /admin "])
        actions = []
        user.receive(SocketPacket(.connect, namespace: "/"), at: at(8), into: &actions)
        #expect(Self.measured(actions) == ["connected 0.008 seconds"])
        #expect(user.wake == at(500))
        actions = []
        user.tick(at: at(500), into: &actions)
        #expect(Self.sent(actions) == ["EVENT / ask #0"], "the ack id is the user's own, not the capture's 7")
        actions = []
        user.receive(SocketPacket(.ack, namespace: "/", ackID: 0, data: .array([])), at: at(503), into: &actions)
        #expect(Self.measured(actions) == ["ack ask 0.003 seconds"])
        // `hello` waits for `/admin`'s answer.
        actions = []
        user.tick(at: at(1000), into: &actions)
        #expect(actions.isEmpty)
        #expect(user.wake == at(1000) + .seconds(5))
        user.receive(SocketPacket(.connect, namespace: "/admin"), at: at(1100), into: &actions)
        #expect(Self.sent(actions) == ["EVENT /admin hello"], "the DISCONNECT, due too, waits for welcome")
        #expect(Self.measured(actions).isEmpty, "only the first namespace's answer is the connect time")
        actions = []
        user.receive(SocketPacket.event("welcome", namespace: "/"), at: at(1120), into: &actions)
        #expect(Self.measured(actions) == ["received welcome"], "another namespace's welcome is not the one waited for")
        #expect(Self.sent(actions).isEmpty)
        actions = []
        user.receive(SocketPacket.event("welcome", namespace: "/admin"), at: at(1150), into: &actions)
        #expect(Self.sent(actions) == ["DISCONNECT /admin "])
        #expect(Self.measured(actions) == ["received welcome", "event welcome 0.05 seconds", "finish connected=true done=true"])
        #expect(user.isFinished && user.wake == nil)
    }

    @Test("What never comes is an error of its kind: an ack, a caused event, a namespace's answer")
    func timeouts() throws {
        var user = try machine(timeout: .seconds(1))
        var actions: [Action] = []
        user.open(at: at(0), into: &actions)
        user.tick(at: at(2), into: &actions)
        user.receive(SocketPacket(.connect, namespace: "/"), at: at(5), into: &actions)
        user.tick(at: at(1001), into: &actions)
        user.receive(SocketPacket(.connect, namespace: "/admin"), at: at(1500), into: &actions)
        actions = []
        user.tick(at: at(2001), into: &actions)
        #expect(Self.measured(actions) == ["error ack_timeout"])
        #expect(Self.sent(actions) == ["EVENT /admin hello"])
        #expect(user.wake == at(2002))
        actions = []
        user.tick(at: at(2002), into: &actions)
        #expect(actions.isEmpty && user.wake == at(3002), "the DISCONNECT waits a timeout for welcome")
        user.tick(at: at(3002), into: &actions)
        #expect(Self.sent(actions) == ["DISCONNECT /admin "])
        #expect(Self.measured(actions) == ["error event_timeout", "finish connected=true done=true"])

        var unjoined = try machine(timeout: .seconds(1))
        actions = []
        unjoined.open(at: at(0), into: &actions)
        unjoined.tick(at: at(2), into: &actions)
        actions = []
        unjoined.tick(at: at(1001), into: &actions)
        #expect(actions.isEmpty && unjoined.wake == at(2001), "the ask waits a timeout for `/` to be joined")
        unjoined.tick(at: at(2001), into: &actions)
        #expect(Self.measured(actions) == ["error event_timeout", "finish connected=false done=false"])
    }

    @Test("A refusal, a session lost, the run's end and a session that never opened each end the play their own way")
    func endings() throws {
        var actions: [Action] = []
        var refused = try machine()
        refused.open(at: at(0), into: &actions)
        actions = []
        refused.receive(SocketPacket(.connectError, namespace: "/"), at: at(3), into: &actions)
        #expect(Self.measured(actions) == ["error refused", "finish connected=false done=false"])

        var lost = try machine()
        lost.open(at: at(0), into: &actions)
        lost.receive(SocketPacket(.connect, namespace: "/"), at: at(3), into: &actions)
        lost.tick(at: at(1001), into: &actions)
        actions = []
        lost.transportEnded(into: &actions)
        #expect(Self.measured(actions) == ["error disconnected", "error disconnected", "finish connected=true done=false"], "the ack, then the rest of the conn")
        actions = []
        lost.transportEnded(into: &actions)
        lost.receive(SocketPacket(.connect, namespace: "/admin"), at: at(1002), into: &actions)
        #expect(actions.isEmpty, "an ended play takes nothing more")

        var stopped = try machine()
        stopped.open(at: at(0), into: &actions)
        stopped.tick(at: at(1001), into: &actions)
        actions = []
        stopped.stop(into: &actions)
        #expect(Self.measured(actions) == ["finish connected=false done=false"], "the run's end counts nothing against the user")

        var unopened = try machine()
        actions = []
        unopened.transportEnded(into: &actions)
        #expect(Self.measured(actions) == ["error connect_failed", "finish connected=false done=false"])
    }
}
