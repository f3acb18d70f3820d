import SocketIOProtocol

/// A captured frame's TCP segment: the link layer, IPv4 or IPv6, and TCP read off the bytes.
/// Pure: bytes in, a segment out, or `nil` for what is not TCP (ARP, UDP, IP fragments).
public struct TCPSegment: Sendable, Hashable {
    public var source: Endpoint
    public var destination: Endpoint
    public var sequence: UInt32
    public var acknowledgment: UInt32
    public var flags: Flags
    public var payload: [UInt8]
    /// Payload bytes the segment carried but the capture did not keep (snaplen).
    public var missing: Int
    /// Seconds since 1970, from the capture.
    public var time: Double

    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let fin = Flags(rawValue: 0x01)
        public static let syn = Flags(rawValue: 0x02)
        public static let rst = Flags(rawValue: 0x04)
        public static let ack = Flags(rawValue: 0x10)
    }

    public init(source: Endpoint, destination: Endpoint, sequence: UInt32, acknowledgment: UInt32 = 0, flags: Flags, payload: [UInt8], missing: Int = 0, time: Double) {
        self.source = source
        self.destination = destination
        self.sequence = sequence
        self.acknowledgment = acknowledgment
        self.flags = flags
        self.payload = payload
        self.missing = missing
        self.time = time
    }
}

/// An address and port. Kept as the address's bytes (text is made only when asked: making and
/// hashing it for every segment showed in profiles).
public struct Endpoint: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// IPv6's 16 bytes, big-endian halves; IPv4 in the low 32 bits of `low`.
    private let high: UInt64
    private let low: UInt64
    public let isIPv6: Bool
    public var port: UInt16

    init(ipv4: UInt32, port: UInt16) {
        (high, low, isIPv6) = (0, UInt64(ipv4), false)
        self.port = port
    }

    init(ipv6High high: UInt64, low: UInt64, port: UInt16) {
        (self.high, self.low, isIPv6) = (high, low, true)
        self.port = port
    }

    /// From text (`127.0.0.1`, `::1`); `nil` if it is no IP address.
    public init?(address: String, port: UInt16) {
        let parts = address.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count == 4 {
            let octets = parts.compactMap { UInt8($0) }
            guard octets.count == 4 else { return nil }
            self.init(ipv4: octets.reduce(0) { $0 << 8 | UInt32($1) }, port: port)
            return
        }
        guard let groups = Self.groups(address) else { return nil }
        self.init(ipv6High: groups[..<4].reduce(0) { $0 << 16 | UInt64($1) }, low: groups[4...].reduce(0) { $0 << 16 | UInt64($1) }, port: port)
    }

    /// `a:b::c` as its eight groups.
    private static func groups(_ text: String) -> [UInt16]? {
        let halves = text.split(separator: "::", omittingEmptySubsequences: false).map(String.init)
        guard halves.count <= 2 else { return nil }
        func parse(_ part: String) -> [UInt16]? {
            var groups: [UInt16] = []
            for group in part.split(separator: ":", omittingEmptySubsequences: false) where !part.isEmpty {
                guard let value = UInt16(group, radix: 16) else { return nil }
                groups.append(value)
            }
            return groups
        }
        guard let head = parse(halves[0]), let tail = halves.count == 2 ? parse(halves[1]) : [] else { return nil }
        let filler = 8 - head.count - tail.count
        guard halves.count == 2 ? filler >= 1 : filler == 0 else { return nil }
        return head + Array(repeating: 0, count: filler) + tail
    }

    /// `127.0.0.1`, or RFC 5952 text for IPv6: lower case, leading zeros dropped, the longest run
    /// of zero groups as `::`.
    public var address: String {
        guard isIPv6 else { return (0..<4).map { String(low >> UInt64(24 - 8 * $0) & 0xFF) }.joined(separator: ".") }
        let groups = (0..<8).map { UInt16(truncatingIfNeeded: ($0 < 4 ? high : low) >> UInt64(48 - 16 * ($0 % 4))) }
        var best: (start: Int, length: Int) = (-1, 0)
        var index = 0
        while index < 8 {
            if groups[index] == 0 {
                var end = index
                while end < 8, groups[end] == 0 { end += 1 }
                if end - index > best.length, end - index > 1 { best = (index, end - index) }
                index = end
            } else {
                index += 1
            }
        }
        func text(_ range: Range<Int>) -> String { groups[range].map { String($0, radix: 16) }.joined(separator: ":") }
        guard best.start >= 0 else { return text(0..<8) }
        return text(0..<best.start) + "::" + text((best.start + best.length)..<8)
    }

    public var description: String { Authority.text(host: address, port: Int(port)) }

    public static func < (lhs: Endpoint, rhs: Endpoint) -> Bool {
        (lhs.isIPv6 ? 1 : 0, lhs.high, lhs.low, lhs.port) < (rhs.isIPv6 ? 1 : 0, rhs.high, rhs.low, rhs.port)
    }
}

/// The link layers siotap reads (pcap's LINKTYPE_ values).
public enum LinkType: Int32, Sendable, CaseIterable {
    /// BSD loopback: a 4-byte address family in the host's byte order.
    case null = 0
    case ethernet = 1
    case raw = 101
    /// OpenBSD loopback: the address family in network byte order.
    case loop = 108
    /// Linux "cooked" capture (`tcpdump -i any`), v1 and v2.
    case linuxSLL = 113
    case linuxSLL2 = 276
    case ipv4 = 228
    case ipv6 = 229

    /// DLT_RAW is 12 or 14 on some systems, and libpcap may report either.
    public init?(pcap value: Int32) {
        if value == 12 || value == 14 {
            self = .raw
        } else {
            self.init(rawValue: value)
        }
    }
}

public enum PacketDecoding {
    /// The TCP segment in `frame` (the bytes the capture kept), or `nil`. Payload the capture
    /// cut (snaplen) is counted in ``TCPSegment/missing``, from the IP header's length.
    public static func tcpSegment(_ frame: [UInt8], linkType: LinkType, time: Double) -> TCPSegment? {
        frame.withUnsafeBytes { tcpSegment($0, linkType: linkType, time: time) }
    }

    public static func tcpSegment(_ bytes: UnsafeRawBufferPointer, linkType: LinkType, time: Double) -> TCPSegment? {
        guard let (offset, version) = network(bytes, linkType: linkType) else { return nil }
        return ip(bytes, at: offset, version: version, time: time)
    }

    /// Where the IP packet starts, and its version (4 or 6, or 0 to read it from the packet).
    private static func network(_ bytes: UnsafeRawBufferPointer, linkType: LinkType) -> (Int, Int)? {
        switch linkType {
        case .ethernet:
            var offset = 12
            var type = be16(bytes, offset)
            // 802.1Q and QinQ tags.
            while let tag = type, tag == 0x8100 || tag == 0x88A8 {
                offset += 4
                type = be16(bytes, offset)
            }
            guard let type else { return nil }
            return ethertype(type).map { (offset + 2, $0) }
        case .linuxSLL:
            return be16(bytes, 14).flatMap(ethertype).map { (16, $0) }
        case .linuxSLL2:
            return be16(bytes, 0).flatMap(ethertype).map { (20, $0) }
        case .null, .loop:
            guard bytes.count >= 4 else { return nil }
            let family = linkType == .loop ? Int(be32(bytes, 0) ?? 0) : Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16 | Int(bytes[3]) << 24
            // AF_INET is 2 everywhere; AF_INET6 is 10 (Linux), 24, 28 or 30 (the BSDs). A family
            // written in the other byte order is recognised too.
            let swapped = Int((UInt32(family).byteSwapped))
            for candidate in [family, swapped] {
                if candidate == 2 { return (4, 4) }
                if [10, 24, 28, 30].contains(candidate) { return (4, 6) }
            }
            return nil
        case .raw:
            return (0, 0)
        case .ipv4:
            return (0, 4)
        case .ipv6:
            return (0, 6)
        }
    }

    private static func ethertype(_ type: UInt16) -> Int? {
        switch type {
        case 0x0800: 4
        case 0x86DD: 6
        default: nil
        }
    }

    private static func ip(_ bytes: UnsafeRawBufferPointer, at start: Int, version declared: Int, time: Double) -> TCPSegment? {
        guard start < bytes.count else { return nil }
        let version = declared == 0 ? Int(bytes[start] >> 4) : declared
        switch version {
        case 4:
            guard bytes.count >= start + 20, bytes[start] >> 4 == 4 else { return nil }
            let headerLength = Int(bytes[start] & 0x0F) * 4
            guard headerLength >= 20, let total = be16(bytes, start + 2).map(Int.init), bytes[start + 9] == 6 else { return nil }
            // Fragments are not reassembled (TCP over loopback and most paths never fragments).
            let fragment = be16(bytes, start + 6) ?? 0
            guard fragment & 0x3FFF == 0 else { return nil }
            guard let source = be32(bytes, start + 12), let destination = be32(bytes, start + 16) else { return nil }
            return tcp(
                bytes, at: start + headerLength, end: start + total, source: { Endpoint(ipv4: source, port: $0) },
                destination: { Endpoint(ipv4: destination, port: $0) }, time: time
            )
        case 6:
            guard bytes.count >= start + 40, let payloadLength = be16(bytes, start + 4).map(Int.init) else { return nil }
            var next = bytes[start + 6]
            var offset = start + 40
            // Extension headers: hop-by-hop, routing, destination options. A fragment header (44) ends it.
            while [0, 43, 60].contains(next) {
                guard bytes.count >= offset + 2 else { return nil }
                next = bytes[offset]
                offset += (Int(bytes[offset + 1]) + 1) * 8
            }
            guard next == 6 else { return nil }
            let source = (be64(bytes, start + 8), be64(bytes, start + 16)), destination = (be64(bytes, start + 24), be64(bytes, start + 32))
            return tcp(
                bytes, at: offset, end: start + 40 + payloadLength, source: { Endpoint(ipv6High: source.0, low: source.1, port: $0) },
                destination: { Endpoint(ipv6High: destination.0, low: destination.1, port: $0) }, time: time
            )
        default:
            return nil
        }
    }

    private static func tcp(
        _ bytes: UnsafeRawBufferPointer, at start: Int, end: Int, source: (UInt16) -> Endpoint, destination: (UInt16) -> Endpoint, time: Double
    ) -> TCPSegment? {
        guard bytes.count >= start + 20, end >= start + 20 else { return nil }
        let headerLength = Int(bytes[start + 12] >> 4) * 4
        guard headerLength >= 20, end >= start + headerLength, let sourcePort = be16(bytes, start), let destinationPort = be16(bytes, start + 2),
              let sequence = be32(bytes, start + 4), let acknowledgment = be32(bytes, start + 8)
        else { return nil }
        // The IP length says how much payload there is; Ethernet may pad beyond it, and the
        // capture may have kept less of it.
        let payloadStart = start + headerLength
        let kept = max(0, min(end, bytes.count) - payloadStart)
        let payload = kept > 0 ? Array(bytes[payloadStart..<(payloadStart + kept)]) : []
        let missing = max(0, end - payloadStart - kept)
        return TCPSegment(
            source: source(sourcePort), destination: destination(destinationPort),
            sequence: sequence, acknowledgment: acknowledgment, flags: TCPSegment.Flags(rawValue: bytes[start + 13] & 0x17),
            payload: payload, missing: missing, time: time
        )
    }

    private static func be16(_ bytes: UnsafeRawBufferPointer, _ at: Int) -> UInt16? {
        guard at >= 0, bytes.count >= at + 2 else { return nil }
        return UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1])
    }

    private static func be32(_ bytes: UnsafeRawBufferPointer, _ at: Int) -> UInt32? {
        guard at >= 0, bytes.count >= at + 4 else { return nil }
        return UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3])
    }

    /// Eight bytes, big-endian (the caller has checked they are there).
    private static func be64(_ bytes: UnsafeRawBufferPointer, _ at: Int) -> UInt64 {
        (0..<8).reduce(0) { $0 << 8 | UInt64(bytes[at + $1]) }
    }
}
