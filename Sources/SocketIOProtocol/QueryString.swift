/// `a=1&b=2` into decoded pairs, in order.
public enum QueryString {
    public static func pairs(_ query: some StringProtocol) -> [(String, String)] {
        var pairs: [(String, String)] = []
        forEachPair(in: query) { pairs.append(($0, $1)) }
        return pairs
    }

    /// Each decoded pair, in order, without gathering them: every request the proxy and the
    /// importer see comes through here.
    static func forEachPair(in query: some StringProtocol, _ visit: (String, String) -> Void) {
        // Bytes, not Characters; and the string's own storage when it has one (a request target's does).
        let scanned: Void? = query.utf8.withContiguousStorageIfAvailable { forEachPair(inBytes: $0, visit) }
        if scanned == nil { Array(query.utf8).withUnsafeBufferPointer { forEachPair(inBytes: $0, visit) } }
    }

    private static func forEachPair(inBytes bytes: UnsafeBufferPointer<UInt8>, _ visit: (String, String) -> Void) {
        var start = 0
        while start <= bytes.count {
            let end = bytes[start...].firstIndex(of: UInt8(ascii: "&")) ?? bytes.count
            if end > start {
                let pair = bytes[start..<end]
                if let equals = pair.firstIndex(of: UInt8(ascii: "=")) {
                    visit(decode(pair[..<equals]), decode(pair[(equals + 1)...]))
                } else {
                    visit(decode(pair), "")
                }
            }
            start = end + 1
        }
    }

    private static func decode(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> String {
        if !bytes.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) {
            return String(decoding: bytes, as: UTF8.self)
        }
        return percentDecode(String(decoding: bytes, as: UTF8.self))
    }

    public static func percentDecode(_ text: some StringProtocol) -> String {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"): bytes.append(0x20)
            case UInt8(ascii: "%"):
                let high = iterator.next(), low = iterator.next()
                if let high, let low, let value = hexValue(high).flatMap({ high in hexValue(low).map { high << 4 | $0 } }) {
                    bytes.append(value)
                } else {
                    bytes.append(byte)
                    if let high { bytes.append(high) }
                    if let low { bytes.append(low) }
                }
            default: bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
