/// A small seeded generator, so a failing randomised test can be replayed from its seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Array where Element == UInt8 {
    init(_ text: String) { self = Array(text.utf8) }
}

/// Every way to cut `bytes` into chunks at one point, plus byte-by-byte.
func splits(of bytes: [UInt8]) -> [[[UInt8]]] {
    var result: [[[UInt8]]] = [bytes.map { [$0] }]
    for cut in 0...bytes.count {
        result.append([Array(bytes[..<cut]), Array(bytes[cut...])])
    }
    return result
}
