import Testing
@testable import SocketIOProtocol

@Suite("Engine.IO v4 (engine.io-parser vectors)")
struct EngineIOv4Tests {
    @Test("A message packet is 4 + data")
    func message() throws {
        #expect(EngineIOCodec.encodeText(.message("test"), version: .v4) == "4test")
        #expect(try EngineIOCodec.decodePacket(text: "4test", version: .v4) == .message("test"))
    }

    @Test("Empty and unknown packets are parser errors", arguments: ["", "a123", "7", "9x"])
    func badPackets(text: String) {
        #expect(throws: EngineIOError.self) { try EngineIOCodec.decodePacket(text: text, version: .v4) }
    }

    @Test("The control packet payload round-trips byte for byte")
    func controlPayload() throws {
        let packets: [EnginePacket] = [
            EnginePacket(.open), EnginePacket(.close), EnginePacket(.ping, .text("probe")), EnginePacket(.pong, .text("probe")), .message("test"),
        ]
        let body = Array("0\u{1E}1\u{1E}2probe\u{1E}3probe\u{1E}4test")
        #expect(EngineIOCodec.encodePayload(packets, version: .v4).body == body)
        #expect(try EngineIOCodec.decodePayload(body, version: .v4) == packets)
    }

    @Test("Binary is b + base64 in a payload, raw bytes on a WebSocket")
    func binary() throws {
        let bytes: [UInt8] = [1, 2, 3, 4]
        let body = Array("4test\u{1E}bAQIDBA==")
        #expect(EngineIOCodec.encodePayload([.message("test"), .message(bytes)], version: .v4).body == body)
        #expect(try EngineIOCodec.decodePayload(body, version: .v4) == [.message("test"), .message(bytes)])
        #expect(EngineIOCodec.encode(.message(bytes), version: .v4) == .binary(bytes))
        #expect(try EngineIOCodec.decode(.binary(bytes), version: .v4) == .message(bytes))
        #expect(EngineIOCodec.encode(.message("4"), version: .v4) == .text("44"))
    }

    @Test("Bad payloads are refused as a whole", arguments: ["{", "{}", "a123\u{1E}a456", "", "4a\u{1E}", "bA=QI"])
    func badPayloads(body: String) {
        #expect(throws: EngineIOError.self) { try EngineIOCodec.decodePayload(Array(body), version: .v4) }
    }

    @Test("A payload split at any byte decodes the same")
    func splitAnywhere() throws {
        let body = Array("4héllo 😀\u{1E}2probe\u{1E}bAQIDBA==\u{1E}6\u{1E}4[\"x\",1]")
        let expected = try EngineIOCodec.decodePayload(body, version: .v4)
        #expect(expected.count == 5)
        for chunks in splits(of: body) {
            var decoder = PollingPayloadDecoder(version: .v4)
            var packets: [EnginePacket] = []
            for chunk in chunks { packets += try decoder.feed(chunk) }
            packets += try decoder.finish()
            #expect(packets == expected)
        }
    }

    @Test("Packets before the separator come out as soon as it arrives")
    func streaming() throws {
        var decoder = PollingPayloadDecoder(version: .v4)
        #expect(try decoder.feed(Array("4hel")) == [])
        #expect(try decoder.feed(Array("lo\u{1E}4wo")) == [.message("hello")])
        #expect(try decoder.finish() == [.message("wo")])
    }

    @Test("Invalid UTF-8 in a text payload is refused")
    func invalidUTF8() {
        let error = #expect(throws: EngineIOError.self) { try EngineIOCodec.decodePayload([0x34, 0xFF, 0xFE], version: .v4) }
        #expect(error?.code == .invalidUTF8)
    }

    @Test("The open packet's JSON reads and writes in the JS server's order")
    func handshake() throws {
        let json = #"{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
        let handshake = try EngineHandshake(json: json)
        #expect(handshake == EngineHandshake(sid: "lv_VI97HAXpY6yYWAAAC", upgrades: ["websocket"], pingInterval: 25000, pingTimeout: 20000, maxPayload: 1_000_000))
        #expect(handshake.json == json)
        #expect(throws: EngineIOError.self) { try EngineHandshake(json: #"{"sid":1}"#) }
    }
}

@Suite("Engine.IO v3 (engine.io-parser 2.2.1 vectors)")
struct EngineIOv3Tests {
    @Test("Text packets and UTF-16 lengths")
    func textPayload() throws {
        #expect(EngineIOCodec.encodeText(.message("€€€"), version: .v3) == "4€€€")
        let body = EngineIOCodec.encodePayload([.message("€€€"), .message("α")], version: .v3).body
        #expect(body == Array("4:4€€€2:4α"))
        #expect(try EngineIOCodec.decodePayload(body, version: .v3) == [.message("€€€"), .message("α")])
        // An emoji is two UTF-16 code units.
        #expect(EngineIOCodec.encodePayload([.message("😀")], version: .v3).body == Array("3:4😀"))
        #expect(try EngineIOCodec.decodePayload(Array("3:4😀6:4hello"), version: .v3) == [.message("😀"), .message("hello")])
    }

    @Test("The suite's bodies: text, batches and base64 binary")
    func suiteBodies() throws {
        #expect(try EngineIOCodec.decodePayload(Array("6:4hello"), version: .v3) == [.message("hello")])
        #expect(try EngineIOCodec.decodePayload(Array("6:4test16:4test26:4test3"), version: .v3) == [.message("test1"), .message("test2"), .message("test3")])
        let mixed: [EnginePacket] = [.message("hello"), .message([1, 2, 3, 4])]
        #expect(try EngineIOCodec.decodePayload(Array("6:4hello10:b4AQIDBA=="), version: .v3) == mixed)
        #expect(EngineIOCodec.encodePayload(mixed, version: .v3).body == Array("6:4hello10:b4AQIDBA=="))
        #expect(try EngineIOCodec.decodePayload(Array("1:6"), version: .v3) == [EnginePacket(.noop)])
        #expect(try EngineIOCodec.decodePayload(Array("0:"), version: .v3) == [])
        #expect(EngineIOCodec.encodePayload([], version: .v3).body == Array("0:"))
    }

    @Test("Single packet errors", arguments: [":::", "94103", ""])
    func badPackets(text: String) {
        #expect(throws: EngineIOError.self) { try EngineIOCodec.decodePacket(text: text, version: .v3) }
    }

    @Test("Payloads rejected as a whole", arguments: ["1!", "", "))", "1:", "3:99:", "1:aa", "1:a2:b", "2:4😀", "5:4😀x", "12345678901:4"])
    func badPayloads(body: String) {
        #expect(throws: EngineIOError.self) { try EngineIOCodec.decodePayload(Array(body), version: .v3) }
    }

    @Test("A binary WebSocket frame is the type byte and the data")
    func binaryFrame() throws {
        #expect(try EngineIOCodec.decode(.binary([4, 3, 2, 1]), version: .v3) == .message([3, 2, 1]))
        #expect(EngineIOCodec.encode(.message([3, 2, 1]), version: .v3) == .binary([4, 3, 2, 1]))
        #expect(EngineIOCodec.encode(.message([3, 2, 1]), version: .v3, base64Binary: true) == .text("b4AwIB"))
        #expect(try EngineIOCodec.decode(.text("b4AwIB"), version: .v3) == .message([3, 2, 1]))
        #expect(throws: EngineIOError.self) { try EngineIOCodec.decode(.binary([9, 1]), version: .v3) }
        #expect(throws: EngineIOError.self) { try EngineIOCodec.decode(.binary([]), version: .v3) }
    }

    @Test("The XHR2 binary payload of the engine.io-protocol v3 suite")
    func xhr2() throws {
        let bytes: [UInt8] = [0x00, 0x06, 0xFF, 0x34, 0x68, 0x65, 0x6C, 0x6C, 0x6F, 0x01, 0x05, 0xFF, 0x04, 0x01, 0x02, 0x03, 0x04]
        let packets: [EnginePacket] = [.message("hello"), .message([1, 2, 3, 4])]
        let encoded = EngineIOCodec.encodePayload(packets, version: .v3, binaryFraming: true)
        #expect(encoded.body == bytes)
        #expect(encoded.framing == .binary)
        #expect(try EngineIOCodec.decodePayload(bytes, version: .v3) == packets)
        // A length of 15 is written as the digit bytes 01 05.
        let long = EngineIOCodec.encodePayload([.message([UInt8](repeating: 7, count: 14))], version: .v3, binaryFraming: true).body
        #expect(Array(long.prefix(4)) == [0x01, 0x01, 0x05, 0xFF])
        // Without binary in the batch the text framing is kept.
        #expect(EngineIOCodec.encodePayload([.message("x")], version: .v3, binaryFraming: true).framing == .text)
    }

    @Test("Bad XHR2 payloads are refused", arguments: [[0x40], [0x00, 0x06], [0x00, 0x0A, 0xFF], [0x01, 0x02, 0xFF, 0x09, 0x00], [0x00, 0xFF, 0x34], [0x00, 0x01, 0xFF, 0x34, 0x05]] as [[UInt8]])
    func badXHR2(body: [UInt8]) {
        #expect(throws: EngineIOError.self) { try EngineIOCodec.decodePayload(body, version: .v3) }
    }

    @Test("Text and XHR2 payloads split at any byte decode the same")
    func splitAnywhere() throws {
        let text = Array("6:4hello3:4😀10:b4AQIDBA==2:4α0:")
        let xhr2: [UInt8] = [0x00, 0x06, 0xFF, 0x34, 0x68, 0x65, 0x6C, 0x6C, 0x6F, 0x01, 0x05, 0xFF, 0x04, 0x01, 0x02, 0x03, 0x04]
        for body in [text, xhr2] {
            let expected = try EngineIOCodec.decodePayload(body, version: .v3)
            #expect(!expected.isEmpty)
            for chunks in splits(of: body) {
                var decoder = PollingPayloadDecoder(version: .v3)
                var packets: [EnginePacket] = []
                for chunk in chunks { packets += try decoder.feed(chunk) }
                packets += try decoder.finish()
                #expect(packets == expected)
            }
        }
    }

    @Test("Random batches round-trip in every framing, split at random points", arguments: 0..<6)
    func randomBatches(seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        let texts = ["hello", "€€€", "😀 and α", "", "[\"a\",1]", "probe", "\u{2028}"]
        for _ in 0..<50 {
            let packets: [EnginePacket] = (0..<Int.random(in: 1...8, using: &random)).map { _ in
                switch Int.random(in: 0..<4, using: &random) {
                case 0: return .message((0..<Int.random(in: 0...40, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) })
                case 1: return EnginePacket(.ping, .text("probe"))
                default: return .message(texts.randomElement(using: &random)!)
                }
            }
            for (version, binaryFraming) in [(EngineIOVersion.v4, false), (.v3, false), (.v3, true)] {
                let body = EngineIOCodec.encodePayload(packets, version: version, binaryFraming: binaryFraming).body
                let expected = packets.map { packet -> EnginePacket in
                    // An empty text message has no data; it decodes as a bare type.
                    packet.text == "" ? EnginePacket(packet.type) : packet
                }
                var decoder = PollingPayloadDecoder(version: version)
                var decoded: [EnginePacket] = []
                var offset = 0
                while offset < body.count {
                    let end = min(body.count, offset + Int.random(in: 1...7, using: &random))
                    decoded += try decoder.feed(body[offset..<end])
                    offset = end
                }
                decoded += try decoder.finish()
                #expect(decoded == expected, "seed \(seed), v\(version.rawValue), binary framing \(binaryFraming)")
            }
        }
    }

    // Found by scripts/fuzz.sh (engine-payload): the text form of a v3 binary packet dropped its
    // type digit, so an XHR2 close with data came back as a message.
    @Test("A v3 binary packet of any type keeps its type in every framing")
    func v3BinaryPacketKeepsItsType() throws {
        let xhr2: [UInt8] = [0x01, 0x00, 0x05, 0xFF, 0x01, 0x00, 0x6F, 0x61, 0x74]
        let packets = try EngineIOCodec.decodePayload(xhr2, version: .v3)
        #expect(packets == [EnginePacket(.close, .binary([0x00, 0x6F, 0x61, 0x74]))])
        let text = EngineIOCodec.encodePayload(packets, version: .v3).body
        #expect(text == Array("10:b1AG9hdA==".utf8))
        #expect(try EngineIOCodec.decodePayload(text, version: .v3) == packets)
        // (The fuzzer's input wrote the length with a leading zero, which we write without.)
        let binary = EngineIOCodec.encodePayload(packets, version: .v3, binaryFraming: true).body
        #expect(binary == [0x01, 0x05, 0xFF, 0x01, 0x00, 0x6F, 0x61, 0x74])
        #expect(try EngineIOCodec.decodePayload(binary, version: .v3) == packets)
    }
}

