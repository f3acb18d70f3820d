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
            for index in 0..<bytes.count {
                let byte = bytes[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
                runStart = index + 1
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

    /// Decodes the escapes of a validated JSON string body. Surrogate pairs join; a lone
    /// surrogate becomes U+FFFD, since a Swift `String` cannot hold one.
    static func unescape(_ escaped: String) -> String {
        var out = String.UnicodeScalarView()
        var utf8 = Array(escaped.utf8)[...]
        var pendingHigh: UInt16?
        var literalStart = utf8.startIndex

        func flushPending() {
            if pendingHigh != nil {
                out.append("\u{FFFD}")
                pendingHigh = nil
            }
        }
        func appendLiteral(_ end: Int) {
            guard literalStart < end else { return }
            flushPending()
            out.append(contentsOf: String(decoding: utf8[literalStart..<end], as: UTF8.self).unicodeScalars)
        }

        var index = utf8.startIndex
        while index < utf8.endIndex {
            guard utf8[index] == UInt8(ascii: "\\") else {
                index += 1
                continue
            }
            appendLiteral(index)
            let kind = utf8[index + 1]
            index += 2
            var simple: Unicode.Scalar?
            switch kind {
            case UInt8(ascii: "b"): simple = "\u{08}"
            case UInt8(ascii: "f"): simple = "\u{0C}"
            case UInt8(ascii: "n"): simple = "\n"
            case UInt8(ascii: "r"): simple = "\r"
            case UInt8(ascii: "t"): simple = "\t"
            case UInt8(ascii: "u"):
                var unit: UInt16 = 0
                for offset in 0..<4 { unit = unit << 4 | (hexValue(utf8[index + offset]) ?? 0) }
                index += 4
                switch unit {
                case 0xD800...0xDBFF:
                    flushPending()
                    pendingHigh = unit
                case 0xDC00...0xDFFF:
                    if let high = pendingHigh {
                        let value = 0x10000 + (UInt32(high - 0xD800) << 10) + UInt32(unit - 0xDC00)
                        out.append(Unicode.Scalar(value)!)
                        pendingHigh = nil
                    } else {
                        out.append("\u{FFFD}")
                    }
                default:
                    flushPending()
                    out.append(Unicode.Scalar(unit)!)
                }
            default: simple = Unicode.Scalar(kind)
            }
            if let simple {
                flushPending()
                out.append(simple)
            }
            literalStart = index
        }
        appendLiteral(utf8.endIndex)
        flushPending()
        utf8 = []
        return String(out)
    }
}
