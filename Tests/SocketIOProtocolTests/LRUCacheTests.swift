import SocketIOProtocol
import Testing

@Suite("LRU cache")
struct LRUCacheTests {
    @Test("Holds at most its capacity and forgets the least recently used first; a look-up or a set makes an entry recent")
    func evictsLeastRecentlyUsed() {
        var cache = LRUCache<String, Int>(capacity: 3)
        cache.set(1, for: "a")
        cache.set(2, for: "b")
        cache.set(3, for: "c")
        #expect(cache.value(for: "a") == 1)  // a is now the most recent: b goes next
        cache.set(4, for: "d")
        #expect(cache.count == 3)
        #expect(cache.value(for: "b") == nil)
        cache.set(30, for: "c")  // c recent again: a goes next
        cache.set(5, for: "e")
        #expect(cache.value(for: "a") == nil)
        #expect(cache.value(for: "c") == 30 && cache.value(for: "d") == 4 && cache.value(for: "e") == 5)
    }

    @Test("Agrees with a plain list kept in use order, over 20,000 random operations")
    func agreesWithAModel() {
        var cache = LRUCache<Int, Int>(capacity: 7)
        var model: [(key: Int, value: Int)] = []  // oldest first
        var random = SplitMix64(seed: 42)
        for step in 0..<20_000 {
            let key = Int(random.next() % 12)
            if random.next() % 2 == 0 {
                let held = model.firstIndex { $0.key == key }.map { model.remove(at: $0) }
                if let held { model.append(held) }
                #expect(cache.value(for: key) == held?.value, "step \(step)")
            } else {
                model.removeAll { $0.key == key }
                model.append((key, step))
                if model.count > 7 { model.removeFirst() }
                cache.set(step, for: key)
            }
            #expect(cache.count == model.count)
        }
    }
}
