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
