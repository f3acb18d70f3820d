import LiveIntervention
import SocketIOProtocol
import Testing
import TrafficCapture

@Suite struct ConnectionGateTests {
    static func packet(_ text: String) -> EnginePacket { .message(text) }

    static func hold(_ breakpoint: String = "b1", event: String = "chat") -> ConnectionGate.Hold {
        ConnectionGate.Hold(
            breakpoint: breakpoint, by: .api, since: 0,
            record: PacketRecord(dir: .clientToServer, transport: .websocket, type: .event, nsp: "/", event: event, raw: "2[\"\(event)\"]")
        )
    }

    @Test func packetsPassWhileNothingIsHeld() {
        var gate = ConnectionGate()
        #expect(gate.admit([Self.packet("2[\"a\"]")], seq: 1, dir: .clientToServer, hold: nil) == .pass)
        #expect(gate.held.isEmpty)
    }

    @Test func packetsBehindAHeldOneWaitAndGoInOrderWhenItIsReleased() throws {
        var gate = ConnectionGate()
        #expect(gate.admit([Self.packet("held")], seq: 5, dir: .clientToServer, hold: Self.hold()) == .kept)
        #expect(gate.admit([Self.packet("second")], seq: 6, dir: .clientToServer, hold: nil) == .kept)
        #expect(gate.admit([Self.packet("third"), Self.packet("its attachment")], seq: 7, dir: .clientToServer, hold: nil) == .kept)
        // The other direction is not held up.
        #expect(gate.admit([Self.packet("answer")], seq: 8, dir: .serverToClient, hold: nil) == .pass)
        #expect(gate.held.map(\.seq) == [5])
        #expect(gate.held.first?.waiting == 2)
        let resolved = gate.resolve(seq: 5, .release)
        let released = try #require(resolved)
        #expect(released.dir == .clientToServer)
        #expect(released.released.compactMap(\.text) == ["held", "second", "third", "its attachment"])
        #expect(!gate.isHolding(.clientToServer))
        let again = gate.resolve(seq: 5, .release)
        #expect(again == nil, "decided once")
    }

    @Test func aSecondHeldPacketStopsTheReleaseAtItself() throws {
        var gate = ConnectionGate()
        _ = gate.admit([Self.packet("one")], seq: 1, dir: .serverToClient, hold: Self.hold())
        _ = gate.admit([Self.packet("between")], seq: 2, dir: .serverToClient, hold: nil)
        _ = gate.admit([Self.packet("two")], seq: 3, dir: .serverToClient, hold: Self.hold())
        _ = gate.admit([Self.packet("after")], seq: 4, dir: .serverToClient, hold: nil)
        // Deciding the later one first frees nothing: the earlier still holds the direction.
        let later = gate.resolve(seq: 3, .drop)
        #expect(try #require(later).released.isEmpty)
        let earlier = gate.resolve(seq: 1, .replace([Self.packet("edited")]))
        let first = try #require(earlier)
        #expect(first.released.compactMap(\.text) == ["edited", "between", "after"])
    }

    @Test func aFullQueueAsksTheOldestHoldToGiveWay() {
        var gate = ConnectionGate()
        _ = gate.admit([Self.packet("held")], seq: 1, dir: .clientToServer, hold: Self.hold())
        var last = ConnectionGate.Admission.kept
        for seq in 2...(ConnectionGate.queueLimit + 1) {
            last = gate.admit([Self.packet("x")], seq: seq, dir: .clientToServer, hold: nil)
        }
        #expect(last == .overflowing(oldestHeld: 1))
    }

    @Test func injectedAckIDsAreOutOfThePeersRangeAndAnsweredOnceFromTheOtherSide() {
        var gate = ConnectionGate()
        let id = gate.reserveAckID()
        #expect(id >= ConnectionGate.firstInjectedAckID)
        #expect(gate.reserveAckID() == id + 1)
        gate.expect(ackID: id, emitSeq: 12, dir: .clientToServer)
        #expect(gate.answer(ackID: id, dir: .clientToServer) == nil, "an ack going the emit's way answers nothing")
        #expect(gate.answer(ackID: 3, dir: .serverToClient) == nil, "the peers' own acks go on")
        #expect(gate.answer(ackID: id, dir: .serverToClient)?.emitSeq == 12)
        #expect(gate.answer(ackID: id, dir: .serverToClient) == nil)
        let late = gate.reserveAckID()
        gate.expect(ackID: late, emitSeq: 13, dir: .serverToClient)
        gate.forget(ackID: late)
        #expect(gate.answer(ackID: late, dir: .clientToServer) == nil, "an answer after the wait ended goes on")
    }

    @Test func binaryFramesAreKeptWithThePacketTheyComplete() {
        var gate = ConnectionGate()
        gate.collect(.message([1, 2]), dir: .clientToServer)
        let group = gate.group(completedBy: Self.packet("51-[\"up\",{\"_placeholder\":true,\"num\":0}]"), dir: .clientToServer)
        #expect(group.count == 2)
        #expect(gate.group(completedBy: Self.packet("2[\"x\"]"), dir: .clientToServer).count == 1)
    }

    @Test func namespacesFollowTheServersAnswers() {
        var gate = ConnectionGate()
        gate.note(PacketRecord(dir: .clientToServer, transport: .polling, type: .connect, nsp: "/admin", raw: "0/admin,"))
        #expect(gate.namespaces.isEmpty, "asked, not joined")
        gate.note(PacketRecord(dir: .serverToClient, transport: .polling, type: .connect, nsp: "/", raw: "0"))
        gate.note(PacketRecord(dir: .serverToClient, transport: .polling, type: .connect, nsp: "/admin", raw: "0/admin,"))
        #expect(gate.namespaces == ["/", "/admin"])
        gate.note(PacketRecord(dir: .clientToServer, transport: .polling, type: .disconnect, nsp: "/admin", raw: "1/admin,"))
        #expect(gate.namespaces == ["/"])
    }
}
