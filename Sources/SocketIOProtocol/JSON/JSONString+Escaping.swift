extension JSONString {
    /// Escapes as `JSON.stringify` does: `"`, `\` and control characters; everything else,
    /// U+2028 included, is written as it is.
    public static func escape(_ value: String) -> String {
        var needsEscaping = false
        for byte in value.utf8 where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
            needsEscaping = true
            break
        }
        guard needsEscaping else { return value }
        var out: [UInt8] = []
        appendEscaped(value, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `value` escaped (see ``escape(_:)``) to UTF-8 `out`, copying the runs between
    /// escapes whole: the capture writer escapes every packet's raw text this way.
    public static func appendEscaped(_ value: String, to out: inout [UInt8]) {
        var value = value
        value.withUTF8 { bytes in
            out.reserveCapacity(out.count + bytes.count + 8)
            var runStart = 0
            var index = 0
            while index < bytes.count {
                // Eight bytes at a time while none needs escaping: most text has no escape at all.
                if index + 8 <= bytes.count, !Self.anyNeedsEscaping(UnsafeRawPointer(bytes.baseAddress! + index).loadUnaligned(as: UInt64.self)) {
                    index += 8
                    continue
                }
                let byte = bytes[index]
                index += 1
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index - 1]))
                runStart = index
                out.append(UInt8(ascii: "\\"))
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(byte)
                case 0x08: out.append(UInt8(ascii: "b"))
                case 0x0C: out.append(UInt8(ascii: "f"))
                case 0x0A: out.append(UInt8(ascii: "n"))
                case 0x0D: out.append(UInt8(ascii: "r"))
                case 0x09: out.append(UInt8(ascii: "t"))
                default:
                    let hex: [UInt8] = Array("0123456789abcdef".utf8)
                    out.append(contentsOf: [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
                }
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<bytes.count]))
        }
    }

    /// Whether any of eight bytes is a control character, `"` or `\` (the classic bit tricks:
    /// a byte below n, a byte equal to c; bytes of 0x80 and up never match).
    @inline(__always)
    static func anyNeedsEscaping(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        func hasZero(_ x: UInt64) -> Bool { (x &- ones) & ~x & highs != 0 }
        let below0x20 = (word &- ones &* 0x20) & ~word & highs != 0
        return below0x20 || hasZero(word ^ (ones &* 0x22)) || hasZero(word ^ (ones &* 0x5C))
    }

    /// Decodes the escapes of a validated JSON string body. Surrogate pairs join; a lone
    /// surrogate becomes U+FFFD, since a Swift `String` cannot hold one.
    static func unescape(_ escaped: String) -> String {
        var escaped = escaped
        return escaped.withUTF8 { bytes in
            var out: [UInt8] = []
            appendUnescaped(bytes, to: &out)
            return String(decoding: out, as: UTF8.self)
        }
    }

    /// The UTF-8 of what escaped (valid) JSON string text stands for, appended to `out`, byte by
    /// byte: a lone surrogate escape becomes U+FFFD.
    static func appendUnescaped(_ utf8: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        var pendingHigh: UInt16?
        func flushPending(_ out: inout [UInt8]) {
            if pendingHigh != nil {
                out += [0xEF, 0xBF, 0xBD]
                pendingHigh = nil
            }
        }
        func appendScalar(_ value: UInt32, to out: inout [UInt8]) {
            switch value {
            case 0..<0x80: out.append(UInt8(value))
            case 0x80..<0x800: out += [0xC0 | UInt8(value >> 6), 0x80 | UInt8(value & 0x3F)]
            case 0x800..<0x10000: out += [0xE0 | UInt8(value >> 12), 0x80 | UInt8(value >> 6 & 0x3F), 0x80 | UInt8(value & 0x3F)]
            default:
                out += [0xF0 | UInt8(value >> 18), 0x80 | UInt8(value >> 12 & 0x3F), 0x80 | UInt8(value >> 6 & 0x3F), 0x80 | UInt8(value & 0x3F)]
            }
        }
        var index = 0
        var literalStart = 0
        while index < utf8.count {
            guard utf8[index] == UInt8(ascii: "\\") else {
                index += 1
                continue
            }
            if literalStart < index {
                flushPending(&out)
                out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[literalStart..<index]))
            }
            let kind = utf8[index + 1]
            index += 2
            switch kind {
            case UInt8(ascii: "b"): flushPending(&out); out.append(0x08)
            case UInt8(ascii: "f"): flushPending(&out); out.append(0x0C)
            case UInt8(ascii: "n"): flushPending(&out); out.append(0x0A)
            case UInt8(ascii: "r"): flushPending(&out); out.append(0x0D)
            case UInt8(ascii: "t"): flushPending(&out); out.append(0x09)
            case UInt8(ascii: "u"):
                var unit: UInt16 = 0
                for offset in 0..<4 { unit = unit << 4 | (hexValue(utf8[index + offset]) ?? 0) }
                index += 4
                switch unit {
                case 0xD800...0xDBFF:
                    flushPending(&out)
                    pendingHigh = unit
                case 0xDC00...0xDFFF:
                    if let high = pendingHigh {
                        appendScalar(0x10000 + (UInt32(high - 0xD800) << 10) + UInt32(unit - 0xDC00), to: &out)
                        pendingHigh = nil
                    } else {
                        out += [0xEF, 0xBF, 0xBD]
                    }
                default:
                    flushPending(&out)
                    appendScalar(UInt32(unit), to: &out)
                }
            default:
                flushPending(&out)
                out.append(kind)
            }
            literalStart = index
        }
        if literalStart < utf8.count {
            flushPending(&out)
            out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[literalStart..<utf8.count]))
        }
        flushPending(&out)
    }
}
