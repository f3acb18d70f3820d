import Testing

@testable import TrafficImport

/// Link layers, IP and TCP headers, read off frames built here byte by byte.
@Suite("Packet decoding")
struct PacketDecodingTests {
    static let payload = Array("42[\"x\"]".utf8)

    /// A TCP header: ports 50000 → 3000, seq 7, ack 9, PSH+ACK, no options.
    static func tcp(_ payload: [UInt8]) -> [UInt8] {
        [0xC3, 0x50, 0x0B, 0xB8, 0, 0, 0, 7, 0, 0, 0, 9, 0x50, 0x18, 0xFF, 0xFF, 0, 0, 0, 0] + payload
    }

    static func ipv4(_ tcp: [UInt8], claimedExtra: Int = 0) -> [UInt8] {
        let total = 20 + tcp.count + claimedExtra
        return [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 0, 0x40, 0, 64, 6, 0, 0, 127, 0, 0, 1, 10, 0, 0, 2] + tcp
    }

    static func ipv6(_ tcp: [UInt8]) -> [UInt8] {
        // A hop-by-hop options header (8 bytes) before TCP.
        let payloadLength = 8 + tcp.count
        let source: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]
        let destination: [UInt8] = [UInt8](repeating: 0, count: 15) + [1]
        return [0x60, 0, 0, 0, UInt8(payloadLength >> 8), UInt8(payloadLength & 0xFF), 0, 64] + source + destination
            + [6, 0, 1, 4, 0, 0, 0, 0] + tcp
    }

    func expectSegment(_ segment: TCPSegment?, source: String, destination: String, missing: Int = 0) {
        #expect(segment?.source.address == source && segment?.source.port == 50000)
        #expect(segment?.destination.address == destination && segment?.destination.port == 3000)
        #expect(segment?.source == Endpoint(address: source, port: 50000))
        #expect(segment?.sequence == 7 && segment?.acknowledgment == 9)
        #expect(segment?.flags == [.ack])
        #expect(segment?.payload == Self.payload)
        #expect(segment?.missing == missing)
    }

    @Test("Ethernet (with a VLAN tag and padding), Linux cooked v1 and v2, loopback, raw IP")
    func linkLayers() {
        let packet = Self.ipv4(Self.tcp(Self.payload))
        let ethernet: [UInt8] = [UInt8](repeating: 0xAA, count: 12) + [0x81, 0x00, 0x00, 0x05, 0x08, 0x00] + packet + [0, 0, 0, 0]
        expectSegment(PacketDecoding.tcpSegment(ethernet, linkType: .ethernet, time: 1), source: "127.0.0.1", destination: "10.0.0.2")
        let sll: [UInt8] = [0, 0, 0, 1, 0, 6] + [UInt8](repeating: 0, count: 8) + [0x08, 0x00] + packet
        expectSegment(PacketDecoding.tcpSegment(sll, linkType: .linuxSLL, time: 1), source: "127.0.0.1", destination: "10.0.0.2")
        let sll2: [UInt8] = [0x08, 0x00, 0, 0] + [UInt8](repeating: 0, count: 16) + packet
        expectSegment(PacketDecoding.tcpSegment(sll2, linkType: .linuxSLL2, time: 1), source: "127.0.0.1", destination: "10.0.0.2")
        let null: [UInt8] = [2, 0, 0, 0] + packet
        expectSegment(PacketDecoding.tcpSegment(null, linkType: .null, time: 1), source: "127.0.0.1", destination: "10.0.0.2")
        expectSegment(PacketDecoding.tcpSegment(packet, linkType: .raw, time: 1), source: "127.0.0.1", destination: "10.0.0.2")
        #expect(LinkType(pcap: 12) == .raw && LinkType(pcap: 147) == nil)
    }

    @Test("IPv6 past an extension header, its addresses as RFC 5952 writes them")
    func ipv6() {
        let frame: [UInt8] = [0x86, 0xDD, 0, 0] + [UInt8](repeating: 0, count: 16) + Self.ipv6(Self.tcp(Self.payload))
        expectSegment(PacketDecoding.tcpSegment(frame, linkType: .linuxSLL2, time: 1), source: "2001:db8::1", destination: "::1")
        #expect(Endpoint(address: "::1", port: 80)?.description == "[::1]:80")
        #expect(Endpoint(address: "2001:db8:0:0:1:0:0:1", port: 1)?.address == "2001:db8::1:0:0:1", "the first of two equal runs of zeros")
        #expect(Endpoint(address: "1::2::3", port: 1) == nil && Endpoint(address: "300.1.1.1", port: 1) == nil)
    }

    @Test("Bytes the snaplen cut are counted as missing; not TCP, a fragment or a runt is nothing")
    func cutAndSkipped() {
        let whole = Self.ipv4(Self.tcp(Self.payload + Array("more".utf8)))
        let cut = Array(whole.prefix(whole.count - 4))
        expectSegment(PacketDecoding.tcpSegment(cut, linkType: .raw, time: 1), source: "127.0.0.1", destination: "10.0.0.2", missing: 4)
        var udp = Self.ipv4(Self.tcp(Self.payload))
        udp[9] = 17
        #expect(PacketDecoding.tcpSegment(udp, linkType: .raw, time: 1) == nil)
        var fragment = Self.ipv4(Self.tcp(Self.payload))
        fragment[6] = 0x20  // more fragments
        #expect(PacketDecoding.tcpSegment(fragment, linkType: .raw, time: 1) == nil)
        #expect(PacketDecoding.tcpSegment([0x45, 0], linkType: .raw, time: 1) == nil)
        #expect(PacketDecoding.tcpSegment([], linkType: .ethernet, time: 1) == nil)
    }
}
