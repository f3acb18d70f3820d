import SocketIOProtocol
import Testing

@testable import SocketIOServer

/// `emitWithAck`'s bookkeeping: the answer, the waiter and the timer may come in any order, and
/// each ack ends once.
@Suite("Ack slots")
struct AckSlotsTests {
    typealias Slots = AckSlots<String>

    @Test("An answer before the waiter is kept for it; after it, it goes to the waiter")
    func answerAndWaiter() {
        var slots = Slots()
        let early = slots.reserve(), late = slots.reserve()
        #expect(early != late)
        #expect(slots.answer(early, with: [.string("a")]) == nil)
        #expect(slots.wait(early, "w1") == .some([.string("a")]))
        #expect(slots.wait(late, "w2") == nil)  // waits
        #expect(slots.answer(late, with: [.string("b")]) == "w2")
        // Done with: a second answer, or a late timer, finds nothing.
        #expect(slots.answer(late, with: [.string("again")]) == nil)
        #expect(slots.expire(late) == nil)
        #expect(slots.endAll().isEmpty)
    }

    @Test("The timer first: the waiter gets nothing, whether it waits already or comes later; a late answer is dropped")
    func expiry() {
        var slots = Slots()
        let waiting = slots.reserve(), notYet = slots.reserve()
        #expect(slots.wait(waiting, "w") == nil)
        #expect(slots.expire(waiting) == .some("w"))
        #expect(slots.expire(notYet) == .some(nil))
        #expect(slots.wait(notYet, "late") == .some(nil))
        #expect(slots.answer(notYet, with: []) == nil)
    }

    @Test("The session's end resumes every waiter, once")
    func end() {
        var slots = Slots()
        let a = slots.reserve(), b = slots.reserve()
        _ = slots.reserve()
        #expect(slots.wait(a, "a") == nil)
        #expect(slots.wait(b, "b") == nil)
        #expect(Set(slots.endAll()) == ["a", "b"])
        #expect(slots.endAll().isEmpty)
        #expect(slots.answer(a, with: []) == nil)
    }
}
