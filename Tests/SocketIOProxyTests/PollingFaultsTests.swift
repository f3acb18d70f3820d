import FaultInjection
import SocketIOProtocol
import Testing

@testable import SocketIOProxy

/// A polling conn's fault state, driven without sockets: the proxy answers a long-poll itself when
/// it owes the client packets, and never sends two long-polls upstream.
@Suite("Polling faults")
struct PollingFaultsTests {
    let close = EnginePacket(.close)
    let refusal = EnginePacket.message(#"44{"message":"jwt expired"}"#)
    let ping = EnginePacket(.ping)

    @Test("A long-poll waits for the upstream's; one at a time goes upstream")
    func waitsForTheUpstream() {
        var state = PollingFaults<String>()
        guard case (.wait(send: true), nil) = state.clientPolls("get1") else { Issue.record("not sent upstream"); return }
        #expect(state.upstreamAnswered() == "get1")
        #expect(!state.upstreamPolling)
    }

    @Test("Packets the proxy owes answer the waiting long-poll at once; the upstream's answer is kept for the next")
    func answersEarly() {
        var state = PollingFaults<String>()
        _ = state.clientPolls("get1")
        #expect(state.send([refusal]) == "get1")
        // The upstream's long-poll is still out: the next one waits for it instead of sending another.
        guard case (.wait(send: false), nil) = state.clientPolls("get2") else { Issue.record("a second long-poll went upstream"); return }
        #expect(state.upstreamAnswered() == "get2")
        // Answered with nobody waiting: kept, and the next long-poll gets it at once.
        _ = state.clientPolls("get3")
        _ = state.send([refusal])
        #expect(state.upstreamAnswered() == nil)
        state.keep([ping])
        guard case (.answer(let packets), nil) = state.clientPolls("get4") else { Issue.record("not answered from the outbox"); return }
        #expect(packets == [ping])
    }

    @Test("With nobody waiting, owed packets go with the next long-poll")
    func owesTheNext() {
        var state = PollingFaults<String>()
        #expect(state.send([refusal]) == nil)
        guard case (.answer([refusal]), nil) = state.clientPolls("get1") else { Issue.record("not answered"); return }
    }

    @Test("A cut ends the waiting long-poll and every later one")
    func cuts() {
        var state = PollingFaults<String>()
        _ = state.clientPolls("get1")
        #expect(state.cut(.reset) == "get1")
        guard case (.gone(.reset), nil) = state.clientPolls("get2") else { Issue.record("a cut conn answered"); return }
    }

    @Test("A second long-poll while one waits: the first is handed back to be answered empty")
    func overlaps() {
        var state = PollingFaults<String>()
        _ = state.clientPolls("get1")
        let (_, replaced) = state.clientPolls("get2")
        #expect(replaced == "get1")
        #expect(state.upstreamAnswered() == "get2")
    }
}
