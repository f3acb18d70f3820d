import SocketIOProtocol
import Testing

@testable import SocketIOServer

/// The Engine.IO session protocol without sockets or clocks: each test feeds the state machine
/// what a transport or a timer would, and checks the actions it returns.
@Suite("Engine.IO session state machine")
struct EngineSessionStateMachineTests {
    typealias Machine = EngineSessionStateMachine
    static let configuration = EngineConfiguration(pingInterval: 300, pingTimeout: 200, upgradeTimeout: 1_000)

    func polling(_ version: EngineIOVersion = .v4) -> Machine {
        Machine(version: version, startingOn: nil, configuration: Self.configuration)
    }

    func message(_ text: String) -> EnginePacket { .message(text) }

    // MARK: Polling

    @Test("A poll with nothing queued waits; a send answers it; queued packets go with the next poll")
    func pollingHandshakeAndSends() {
        var machine = polling()
        #expect(machine.start() == [.schedule(.ping(generation: 0), afterMilliseconds: 300)])
        #expect(machine.transport == .polling)
        let (first, noActions) = machine.poll()
        #expect(first == .wait && noActions.isEmpty)
        #expect(machine.send([message("40")]) == [.answerPoll([message("40")])])
        #expect(machine.send([message("a"), message("b")]).isEmpty)
        #expect(machine.poll().0 == .answer([message("a"), message("b")]))
    }

    @Test("A poll carries at most 16 packets; the rest waits for the next")
    func pollBatches() {
        var machine = polling()
        _ = machine.send((0..<20).map { message("\($0)") })
        #expect(machine.poll().0 == .answer((0..<16).map { message("\($0)") }))
        #expect(machine.poll().0 == .answer((16..<20).map { message("\($0)") }))
    }

    @Test("The handshake takes at most 15 queued packets with it, next to the open packet")
    func takeQueued() {
        var machine = polling()
        _ = machine.send((0..<20).map { message("\($0)") })
        #expect(machine.takeQueued().count == 15)
        #expect(machine.poll().0 == .answer((15..<20).map { message("\($0)") }))
    }

    @Test("A second poll while one waits: the second is refused, the first gets a close, the session ends")
    func twoPolls() {
        var machine = polling()
        #expect(machine.poll().0 == .wait)
        let (decision, actions) = machine.poll()
        #expect(decision == .refuse(.badRequest))
        #expect(actions == [.answerPoll([EnginePacket(.close)]), .finish(.multiplePollRequests)])
        #expect(machine.isClosed)
        #expect(machine.poll().0 == .refuse(.unknownSid))
    }

    @Test("POSTed messages are delivered in order; a payload that does not decode ends the session")
    func posts() {
        var machine = polling()
        let (accepted, actions) = machine.post(.success([message("2[\"a\"]"), message("2[\"b\"]")]))
        #expect(accepted == nil)
        #expect(actions == [.deliver(message("2[\"a\"]")), .deliver(message("2[\"b\"]"))])
        let (refused, closing) = machine.post(.failure(EngineIOError(.invalidLength, offset: 0)))
        #expect(refused == .badRequest)
        #expect(closing == [.finish(.parseError)])
        #expect(machine.post(.success([message("x")])).0 == .unknownSid)
    }

    @Test("The client's close packet releases its held poll with a noop")
    func clientClosesWhilePolling() {
        var machine = polling()
        #expect(machine.poll().0 == .wait)
        let (_, actions) = machine.post(.success([message("1"), EnginePacket(.close), message("after")]))
        #expect(actions == [.deliver(message("1")), .answerPoll([EnginePacket(.noop)]), .finish(.transportClose)])
    }

    @Test("The server's close: the close packet waits for a poll, then the session ends")
    func serverClosesWhilePolling() {
        var machine = polling()
        _ = machine.send([message("bye")])
        #expect(machine.close(.application("kicked"), notifyClient: true)
            == [.endInbound(.application("kicked")), .schedule(.closingTimeout, afterMilliseconds: 200)])
        #expect(machine.send([message("ignored")]).isEmpty)
        #expect(machine.post(.success([message("late")])).0 == .unknownSid)
        let (decision, actions) = machine.poll()
        #expect(decision == .answer([message("bye"), EnginePacket(.close)]))
        #expect(actions == [.finish(.application("kicked"))])
    }

    @Test("Nobody polls for the close packet: the session ends after a ping timeout")
    func closingTimesOut() {
        var machine = polling()
        _ = machine.close(.application("kicked"), notifyClient: true)
        #expect(machine.timerFired(.closingTimeout) == [.finish(.application("kicked"))])
        #expect(machine.timerFired(.closingTimeout).isEmpty)
    }

    @Test("The server's close with a poll waiting answers it with a close at once")
    func serverClosesWithAPollHeld() {
        var machine = polling()
        _ = machine.poll()
        #expect(machine.close(.serverShuttingDown, notifyClient: false) == [.answerPoll([EnginePacket(.close)]), .finish(.serverShuttingDown)])
    }

    // MARK: Upgrade

    @Test("The upgrade as engine.io does it: probe answered, a held poll released with a noop every 100 ms, upgrade packet switches, a GET still out gets a close packet, queued packets follow")
    func upgrade() {
        var machine = polling()
        #expect(machine.poll().0 == .wait)
        #expect(machine.upgradeRequested(on: 7) == [.schedule(.upgradeTimeout(7), afterMilliseconds: 1_000)])
        #expect(machine.owns(7))
        #expect(machine.received(.success(EnginePacket(.ping, .text("probe"))), on: 7)
            == [.writeWebSocket(7, [EnginePacket(.pong, .text("probe"))]), .schedule(.upgradeCheck(7), afterMilliseconds: 100)])
        // The check releases the held poll, and comes again.
        #expect(machine.timerFired(.upgradeCheck(7)) == [.answerPoll([EnginePacket(.noop)]), .schedule(.upgradeCheck(7), afterMilliseconds: 100)])
        #expect(machine.timerFired(.upgradeCheck(7)) == [.schedule(.upgradeCheck(7), afterMilliseconds: 100)])
        // With no poll out, sends queue for the WebSocket.
        #expect(machine.send([message("queued")]).isEmpty)
        #expect(machine.received(.success(EnginePacket(.upgrade)), on: 7) == [.writeWebSocket(7, [message("queued")])])
        #expect(machine.timerFired(.upgradeCheck(7)).isEmpty, "no more checks once upgraded")
        #expect(machine.transport == .websocket)
        #expect(machine.send([message("direct")]) == [.writeWebSocket(7, [message("direct")])])
        #expect(machine.poll().0 == .refuse(.badRequest))
        #expect(machine.post(.success([message("x")])).0 == .badRequest)
        // The upgrade's timer comes too late to matter.
        #expect(machine.timerFired(.upgradeTimeout(7)).isEmpty)
    }

    @Test("A GET still out when the upgrade packet comes gets a close packet, as engine.io closes its polling transport")
    func pollOutAtTheUpgrade() {
        var machine = polling()
        _ = machine.upgradeRequested(on: 7)
        _ = machine.received(.success(EnginePacket(.ping, .text("probe"))), on: 7)
        #expect(machine.poll().0 == .wait, "a poll after the probe waits for the next check")
        #expect(machine.received(.success(EnginePacket(.upgrade)), on: 7) == [.answerPoll([EnginePacket(.close)])])
        #expect(machine.transport == .websocket)
    }

    @Test("An upgrade packet before the probe, or anything else, aborts the upgrade; polling goes on")
    func upgradeOutOfOrder() {
        var machine = polling()
        _ = machine.upgradeRequested(on: 1)
        #expect(machine.received(.success(EnginePacket(.upgrade)), on: 1) == [.closeWebSocket(1)])
        #expect(!machine.owns(1))
        #expect(machine.transport == .polling)
        _ = machine.upgradeRequested(on: 2)
        #expect(machine.received(.success(message("hi")), on: 2) == [.closeWebSocket(2)])
    }

    @Test("Only one upgrade at a time; a second socket is closed")
    func secondUpgrade() {
        var machine = polling()
        _ = machine.upgradeRequested(on: 1)
        #expect(machine.upgradeRequested(on: 2) == [.closeWebSocket(2)])
        #expect(machine.owns(1) && !machine.owns(2))
    }

    @Test("An upgrade that takes too long, or whose socket ends, is dropped")
    func upgradeTimeoutAndEnd() {
        var machine = polling()
        _ = machine.upgradeRequested(on: 1)
        #expect(machine.timerFired(.upgradeTimeout(1)) == [.closeWebSocket(1)])
        _ = machine.upgradeRequested(on: 2)
        #expect(machine.webSocketEnded(2) == [.closeWebSocket(2)])
        #expect(machine.transport == .polling && machine.isOpen)
    }

    @Test("A WebSocket session never upgrades; no polls")
    func webSocketSession() {
        var machine = Machine(version: .v4, startingOn: 0, configuration: Self.configuration)
        #expect(machine.upgradeRequested(on: 1) == [.closeWebSocket(1)])
        #expect(machine.poll().0 == .refuse(.badRequest))
        #expect(machine.received(.success(message("m")), on: 0) == [.deliver(message("m"))])
        #expect(machine.received(.success(message("stray")), on: 9).isEmpty)
    }

    // MARK: Heartbeat

    @Test("v4: ping at the interval, the next an interval after the pong, a late pong ends the session")
    func heartbeatV4() {
        var machine = Machine(version: .v4, startingOn: 0, configuration: Self.configuration)
        _ = machine.start()
        #expect(machine.timerFired(.ping(generation: 0))
            == [.writeWebSocket(0, [EnginePacket(.ping)]), .schedule(.pongTimeout(generation: 0), afterMilliseconds: 200)])
        #expect(machine.received(.success(EnginePacket(.pong)), on: 0) == [.schedule(.ping(generation: 1), afterMilliseconds: 300)])
        #expect(machine.timerFired(.pongTimeout(generation: 0)).isEmpty, "answered: a stale timer")
        _ = machine.timerFired(.ping(generation: 1))
        #expect(machine.timerFired(.pongTimeout(generation: 1)) == [.closeWebSocket(0), .finish(.pingTimeout)])
        #expect(machine.timerFired(.ping(generation: 1)).isEmpty)
    }

    @Test("v3: the client pings and gets a pong; no ping within interval + timeout ends the session")
    func heartbeatV3() {
        var machine = polling(.v3)
        #expect(machine.start() == [.schedule(.clientPingTimeout(generation: 0), afterMilliseconds: 500)])
        _ = machine.poll()
        let (_, actions) = machine.post(.success([EnginePacket(.ping, .text("probe?"))]))
        #expect(actions == [.schedule(.clientPingTimeout(generation: 1), afterMilliseconds: 500), .answerPoll([EnginePacket(.pong, .text("probe?"))])])
        #expect(machine.timerFired(.clientPingTimeout(generation: 0)).isEmpty, "a ping came since")
        #expect(machine.timerFired(.clientPingTimeout(generation: 1)) == [.finish(.pingTimeout)])
    }

    @Test("A ping from a v4 client or a pong from a v3 client breaks the protocol")
    func wrongHeartbeatDirection() {
        var v4 = Machine(version: .v4, startingOn: 0, configuration: Self.configuration)
        #expect(v4.received(.success(EnginePacket(.ping)), on: 0) == [.closeWebSocket(0), .finish(.invalidHeartbeatDirection)])
        var v3 = polling(.v3)
        #expect(v3.post(.success([EnginePacket(.pong)])).1 == [.finish(.invalidHeartbeatDirection)])
    }

    // MARK: WebSocket ends

    @Test("The session's WebSocket ends: transport close; a message that does not decode: parse error")
    func webSocketEnds() {
        var ended = Machine(version: .v4, startingOn: 0, configuration: Self.configuration)
        #expect(ended.webSocketEnded(0) == [.closeWebSocket(0), .finish(.transportClose)])
        #expect(ended.webSocketEnded(0).isEmpty)
        var broken = Machine(version: .v4, startingOn: 0, configuration: Self.configuration)
        #expect(broken.received(.failure(EngineIOError(.unknownPacketType, offset: 0)), on: 0) == [.closeWebSocket(0), .finish(.parseError)])
    }

    @Test("Closing while an upgrade is under way closes the probing socket too")
    func closeDuringUpgrade() {
        var machine = polling()
        _ = machine.upgradeRequested(on: 3)
        #expect(machine.close(.serverShuttingDown, notifyClient: false) == [.closeWebSocket(3), .finish(.serverShuttingDown)])
        #expect(!machine.owns(3))
    }
}

@Suite("Connection-state recovery store")
struct RecoveryStoreTests {
    func session(_ pid: String, rooms: Set<String> = ["room"], at time: Double = 10) -> RecoveryStore.Session {
        RecoveryStore.Session(sid: "s-\(pid)", pid: pid, rooms: rooms.union(["s-\(pid)"]), data: ["user": .string("ada")], disconnectedAt: time)
    }

    @Test("A client back in time gets its session and what it missed: its rooms', all, not what excluded it")
    func restores() throws {
        let store = RecoveryStore(maxDisconnectionMilliseconds: 60_000)
        let seen = store.record([.string("before")], rooms: [], exceptRooms: [], exceptSocket: nil, now: 1)
        store.persist(session("p1"))
        _ = store.record([.string("to room")], rooms: ["room"], exceptRooms: [], exceptSocket: nil, now: 11)
        _ = store.record([.string("to other")], rooms: ["other"], exceptRooms: [], exceptSocket: nil, now: 12)
        _ = store.record([.string("to all but room")], rooms: [], exceptRooms: ["room"], exceptSocket: nil, now: 13)
        _ = store.record([.string("from itself")], rooms: [], exceptRooms: [], exceptSocket: "s-p1", now: 14)
        let direct = store.record([.string("direct")], rooms: ["s-p1"], exceptRooms: [], exceptSocket: nil, now: 15)
        let restored = try #require(store.restore(pid: "p1", offset: seen, now: 20))
        #expect(restored.session.sid == "s-p1" && restored.session.data["user"] == .string("ada"))
        #expect(restored.missed.map { $0.first?.stringValue } == ["to room", "direct"])
        #expect(restored.missed.last?.last == .string(direct), "each missed event keeps its offset last")
        #expect(store.restore(pid: "p1", offset: seen, now: 21) == nil, "a session is given back once")
    }

    @Test("Unknown pid, unknown offset, or too late: no recovery")
    func refuses() {
        let store = RecoveryStore(maxDisconnectionMilliseconds: 1000)
        let offset = store.record([.string("e")], rooms: [], exceptRooms: [], exceptSocket: nil, now: 10)
        store.persist(session("p1", at: 10))
        #expect(store.restore(pid: "nobody", offset: offset, now: 10.5) == nil)
        #expect(store.restore(pid: "p1", offset: "999", now: 10.5) == nil)
        store.persist(session("p2", at: 10))
        #expect(store.restore(pid: "p2", offset: offset, now: 11.5) == nil, "past maxDisconnectionDuration")
    }
}
