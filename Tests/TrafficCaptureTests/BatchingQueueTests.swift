import Dispatch
import Synchronization
import Testing
@testable import TrafficCapture

@Suite("The batching queue under observing and capture writing")
struct BatchingQueueTests {
    @Test("Items are numbered and stamped under the lock in the order they are handled, from many threads")
    func orderFromManyThreads() {
        let handled = Mutex<[(number: Int, stamp: Double)]>([])
        let queue = BatchingQueue<(number: Int, stamp: Double)>(label: "test", highWater: 1_000_000, highWaterBytes: 1 << 30) { batch in
            handled.withLock { $0 += batch }
        }
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for step in 0..<2000 {
                // Each thread proposes times that go back; the maker keeps them from going back.
                let proposed = Double(thread * 10 + (step % 7))
                queue.add(bytes: 1) { order in
                    order.lastTime = max(order.lastTime, proposed)
                    return (order.added + 1, order.lastTime)
                }
            }
        }
        queue.flush()
        let items = handled.withLock { $0 }
        #expect(items.count == 16_000)
        #expect(items.map(\.number) == Array(1...16_000), "numbered in handling order, none lost or twice")
        #expect(zip(items, items.dropFirst()).allSatisfy { $0.stamp <= $1.stamp }, "stamps never go back")
        #expect(queue.added == 16_000 && queue.waiting.items == 0 && queue.waiting.bytes == 0)
    }

    @Test("Drained by the producer: nothing is handled until it flushes, then all of it in order")
    func onFlush() async throws {
        let handled = Mutex<[Int]>([])
        let queue = BatchingQueue<Int>(label: "test", highWater: 100, highWaterBytes: 1 << 20, draining: .onFlush) { batch in
            handled.withLock { $0 += batch }
        }
        for value in 0..<50 { queue.add(bytes: 0) { _ in value } }
        try await Task.sleep(for: .milliseconds(50))
        #expect(handled.withLock { $0 }.isEmpty, "a queue drained on flush has no thread of its own at work")
        #expect(queue.waiting.items == 50)
        queue.flush()
        #expect(handled.withLock { $0 } == Array(0..<50))
    }

    @Test("Closing handles what waits, resumes paused readers, and takes nothing after")
    func close() {
        let handled = Mutex<[Int]>([])
        let queue = BatchingQueue<Int>(label: "test", highWater: 2, highWaterBytes: 1 << 20, draining: .onFlush) { batch in
            handled.withLock { $0 += batch }
        }
        for value in 0..<3 { #expect(queue.add(bytes: 0) { _ in value } == value + 1) }
        let resumed = Mutex(false)
        #expect(!queue.admit { resumed.withLock { $0 = true } }, "past the high water")
        queue.close()
        #expect(resumed.withLock { $0 }, "a closing queue lets its readers go")
        #expect(handled.withLock { $0 } == [0, 1, 2])
        #expect(queue.add(bytes: 0) { _ in 3 } == nil)
        #expect(queue.admit { Issue.record("a closed queue pauses no one") })
        queue.flush()
        #expect(handled.withLock { $0 } == [0, 1, 2])
    }

    @Test("A batch's array is kept for the next while batches are small, and let go after a backlog")
    func keptArrays() {
        let handled = Mutex(0)
        let queue = BatchingQueue<Int>(label: "test", highWater: 1_000_000, highWaterBytes: 1 << 30, draining: .onFlush) { batch in
            handled.withLock { $0 += batch.count }
        }
        for value in 0..<100 { queue.add(bytes: 0) { _ in value } }
        queue.flush()
        #expect(queue.reservedCapacity >= 100, "a small batch's array is kept")
        for value in 0..<50_000 { queue.add(bytes: 0) { _ in value } }
        queue.flush()
        #expect(handled.withLock { $0 } == 50_100)
        #expect(queue.reservedCapacity < BatchingQueue<Int>.spareLimit * 2, "a backlog's array is not held")
    }
}
