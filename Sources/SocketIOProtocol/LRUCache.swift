/// A map that holds at most `capacity` entries, forgetting the least recently used first: for
/// what is worth keeping per name a peer chooses (a certificate per SNI name, a pattern's verdict
/// per host), which must not grow with every name a peer can make up.
public struct LRUCache<Key: Hashable, Value> {
    fileprivate struct Node {
        var key: Key
        var value: Value
        /// Neighbours in use order, as slots in `nodes`: `newer` toward `newest`.
        var newer: Int
        var older: Int
    }

    public let capacity: Int
    private var nodes: [Node] = []
    private var slots: [Key: Int] = [:]
    private var newest = -1
    private var oldest = -1

    public init(capacity: Int) {
        self.capacity = max(1, capacity)
        slots.reserveCapacity(min(self.capacity, 4096))
    }

    public var count: Int { slots.count }

    /// The value for `key`, now the most recently used; nil when it is not held.
    public mutating func value(for key: Key) -> Value? {
        guard let slot = slots[key] else { return nil }
        touch(slot)
        return nodes[slot].value
    }

    /// Holds `value` for `key` as the most recently used, forgetting the least recently used
    /// entry when full.
    public mutating func set(_ value: Value, for key: Key) {
        if let slot = slots[key] {
            nodes[slot].value = value
            touch(slot)
            return
        }
        let slot: Int
        if nodes.count < capacity {
            slot = nodes.count
            nodes.append(Node(key: key, value: value, newer: -1, older: -1))
        } else {
            // The oldest entry's slot is taken over.
            slot = oldest
            unlink(slot)
            slots.removeValue(forKey: nodes[slot].key)
            nodes[slot] = Node(key: key, value: value, newer: -1, older: -1)
        }
        slots[key] = slot
        linkAsNewest(slot)
    }

    private mutating func touch(_ slot: Int) {
        guard slot != newest else { return }
        unlink(slot)
        linkAsNewest(slot)
    }

    private mutating func unlink(_ slot: Int) {
        let (newer, older) = (nodes[slot].newer, nodes[slot].older)
        if newer >= 0 { nodes[newer].older = older } else { newest = older }
        if older >= 0 { nodes[older].newer = newer } else { oldest = newer }
        nodes[slot].newer = -1
        nodes[slot].older = -1
    }

    private mutating func linkAsNewest(_ slot: Int) {
        nodes[slot].older = newest
        nodes[slot].newer = -1
        if newest >= 0 { nodes[newest].newer = slot }
        newest = slot
        if oldest < 0 { oldest = slot }
    }
}

extension LRUCache: Sendable where Key: Sendable, Value: Sendable {}
extension LRUCache.Node: Sendable where Key: Sendable, Value: Sendable {}
