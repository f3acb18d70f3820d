import Testing
@testable import SocketIOProtocol

private func decodeOne(_ text: String, _ version: SocketIOVersion = .v5, attachments: [[UInt8]] = []) throws -> SocketPacket? {
    var decoder = SocketIODecoder(version: version)
    var packet = try decoder.decode(text: text)
    for attachment in attachments { packet = try decoder.decode(binary: attachment) }
    return packet
}

private func json(_ text: String) throws -> JSONValue { try JSONValue.parse(text) }

@Suite("Socket.IO v5 (socket.io-parser 4.2.x vectors)")
struct SocketIOv5Tests {
    @Test(
        "Round trips from the parser's tests",
        arguments: [
            #"0/woot,{"token":"123"}"#, "1/woot,", #"2["a",1,{}]"#, #"2[1,"a",{}]"#, #"2/test,1["a",1,{}]"#, #"3123["a",1,{}]"#,
            #"4"Unauthorized""#, #"4{"message":"Unauthorized"}"#, #"2["foo"]"#, #"2/admin,["bar"]"#, #"212["foo"]"#,
            #"3/admin,13["bar"]"#, "1", #"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#, #"4{"message":"Not authorized"}"#, "0",
            #"44/random,{"message":"Invalid namespace"}"#.dropFirst().description,
        ]
    )
    func roundTrip(text: String) throws {
        let packet = try #require(try decodeOne(text))
        #expect(SocketIOCodec.encode(packet).text == text)
        #expect(SocketIOCodec.encode(packet).attachments.isEmpty)
    }

    @Test("Fields of decoded packets")
    func fields() throws {
        let event = try #require(try decodeOne(#"2/test,1["a",1,{}]"#))
        #expect(event.type == .event)
        #expect(event.namespace == "/test")
        #expect(event.ackID == 1)
        #expect(event.eventName == "a")
        #expect(event.arguments == [.number(1), try json("{}")])
        let ack = try #require(try decodeOne(#"3123["a",1,{}]"#))
        #expect(ack.ackID == 123)
        #expect(ack.arguments.count == 3)
        #expect(try decodeOne("0/admin")?.namespace == "/admin")  // the comma is optional at the end
        #expect(try decodeOne("0/admin")?.data == nil)
        #expect(try decodeOne(#"2[42,"x"]"#)?.eventName == "42")
        // v5 keeps a ? in a namespace name: only protocol v4 has namespace queries.
        #expect(try decodeOne("0/admin?x=1,{}")?.namespace == "/admin?x=1")
    }

    @Test("A buffer event joins its attachment and encodes back")
    func bufferEvent() throws {
        let header = #"51-/cool,23["a",{"_placeholder":true,"num":0}]"#
        let packet = try #require(try decodeOne(header, attachments: [Array("abc")]))
        #expect(packet.type == .binaryEvent)
        #expect(packet.namespace == "/cool")
        #expect(packet.ackID == 23)
        #expect(packet.arguments == [.binary(Array("abc"))])
        #expect(packet.attachments == [Array("abc")])
        let encoded = SocketIOCodec.encode(packet)
        #expect(encoded.text == header)
        #expect(encoded.attachments == [Array("abc")])
    }

    @Test("A binary ack, and the README's two-attachment event")
    func binaryAckAndTwoAttachments() throws {
        let ack = try #require(try decodeOne(#"61-/back,127["a",{"_placeholder":true,"num":0},{}]"#, attachments: [Array("xxx")]))
        #expect(ack.type == .binaryAck)
        #expect(ack.arguments == [.string("a"), .binary(Array("xxx")), try json("{}")])
        let two = try #require(
            try decodeOne(#"52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#, attachments: [[1, 2], [3, 4]]))
        #expect(two.arguments == [.binary([1, 2]), .binary([3, 4])])
        let second = try #require(try decodeOne(#"61-15["bar",{"_placeholder":true,"num":0}]"#, attachments: [[9]]))
        #expect(second.ackID == 15)
    }

    @Test("An event holding binary becomes BINARY_EVENT with placeholders in depth-first order")
    func encoderSplitsBinary() throws {
        let packet = SocketPacket.event("upload", [.object(["file": .binary([1]), "parts": [.binary([2]), "x"]]), .binary([3])], namespace: "/up", ackID: 7)
        let (text, attachments) = SocketIOCodec.encode(packet)
        #expect(text == #"53-/up,7["upload",{"file":{"_placeholder":true,"num":0},"parts":[{"_placeholder":true,"num":1},"x"]},{"_placeholder":true,"num":2}]"#)
        #expect(attachments == [[1], [2], [3]])
        let decoded = try #require(try decodeOne(text, attachments: attachments))
        #expect(decoded.data == packet.data)
        let ack = SocketIOCodec.encode(SocketPacket(.ack, ackID: 3, data: [.binary([])]))
        #expect(ack.text == #"61-3[{"_placeholder":true,"num":0}]"#)
    }

    @Test("Zero attachments decode at once")
    func zeroAttachments() throws {
        var decoder = SocketIODecoder(version: .v5)
        let packet = try decoder.decode(text: #"50-["a"]"#)
        #expect(packet?.type == .binaryEvent)
        #expect(!decoder.isReconstructing)
    }

    @Test(
        "Invalid payloads",
        arguments: [
            #"442["some","data""#, #"0/admin,"invalid""#, "0[]", "1/admin,{}", #"2/admin,"invalid"#, "2/admin,{}",
            #"2[{"toString":"foo"}]"#, #"2[true,"foo"]"#, #"2[null,"bar"]"#, #"2["connect"]"#, #"2["disconnect","123"]"#,
            "2[]", "3{}", "4[]", "4 1", "2abc", #"2["connect_error"]"#, #"2["newListener"]"#, "0null",
            // A reserved name is reserved however it is escaped.
            #"2["\u0063onnect"]"#, #"2["removeListene\u0072"]"#, #"2["disconnect\u0069ng"]"#,
        ]
    )
    func invalidPayload(text: String) {
        let error = #expect(throws: SocketIOError.self) { try decodeOne(text) }
        #expect(error?.code == .invalidPayload)
        #expect(error?.message == "invalid payload")
    }

    @Test("Unknown types", arguments: ["999", "7", "a", "/"])
    func unknownType(text: String) {
        let error = #expect(throws: SocketIOError.self) { try decodeOne(text) }
        #expect(error?.code == .unknownPacketType)
    }

    @Test("The unknown type message names the type like socket.io-parser")
    func unknownTypeMessage() {
        let error = #expect(throws: SocketIOError.self) { try decodeOne("999") }
        #expect(error?.message == "unknown packet type 9")
    }

    @Test("Illegal attachment counts", arguments: ["5", "51", "5a-", "51.23-", "5-[\"a\"]", "512345678901-[\"a\"]"])
    func illegalAttachments(text: String) {
        let error = #expect(throws: SocketIOError.self) { try decodeOne(text) }
        #expect(error?.code == .illegalAttachments)
        #expect(error?.message == "Illegal attachments")
    }

    @Test("More attachments than the limit")
    func tooManyAttachments() {
        var decoder = SocketIODecoder(version: .v5, maxAttachments: 2)
        let text = #"53-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1},{"_placeholder":true,"num":2}]"#
        let error = #expect(throws: SocketIOError.self) { try decoder.decode(text: text) }
        #expect(error?.code == .tooManyAttachments)
        #expect(throws: SocketIOError.self) { try decodeOne(#"511-["a"]"#) }  // default limit 10
    }

    @Test("Placeholders whose num is not an attachment index", arguments: [#""splice""#, "1", "-1", "0.5", "null", "0e0", "18446744073709551616"])
    func illegalPlaceholder(num: String) {
        let error = #expect(throws: SocketIOError.self) {
            try decodeOne(#"51-["hello",{"_placeholder":true,"num":"# + num + "}]", attachments: [[1]])
        }
        #expect(error?.code == .illegalPlaceholder)
        #expect(error?.message == "illegal attachments")
    }

    @Test("A placeholder beyond the announced count is refused with the text, not after waiting; the decoder goes on")
    func placeholderBeyondCount() throws {
        var decoder = SocketIODecoder(version: .v5)
        let error = #expect(throws: SocketIOError.self) {
            try decoder.decode(text: #"52-["x",{"_placeholder":true,"num":0},[{"_placeholder":true,"num":2}]]"#)
        }
        #expect(error?.code == .illegalPlaceholder)
        #expect(!decoder.isReconstructing)
        #expect(decoder.waitingType == nil)
        #expect(try decoder.decode(text: #"2["next"]"#)?.eventName == "next")
        // Within the count, it waits, and says for what.
        #expect(try decoder.decode(text: #"61-3[{"_placeholder":true,"num":0}]"#) == nil)
        #expect(decoder.waitingType == .binaryAck)
        #expect(decoder.missingAttachments == 1)
    }

    @Test("Placeholders may name one attachment twice: both places get it, and encoding writes it once per place (fuzzer finding)")
    func sharedAttachment() throws {
        var decoder = SocketIODecoder(version: .v5)
        #expect(try decoder.decode(text: #"51-["x",{"_placeholder":true,"num":0},[{"_placeholder":true,"num":0}]]"#) == nil)
        let packet = try #require(try decoder.decode(binary: [7]))
        #expect(packet.arguments == [.binary([7]), .array([.binary([7])])])
        let (text, attachments) = SocketIOCodec.encode(packet)
        #expect(text == #"52-["x",{"_placeholder":true,"num":0},[{"_placeholder":true,"num":1}]]"#)
        #expect(attachments == [[7], [7]])
        // Eleven places for one attachment re-encode past the limit of ten: refused, as the
        // reference decoder refuses it.
        let eleven = (0..<11).map { _ in #"{"_placeholder":true,"num":0}"# }.joined(separator: ",")
        var many = SocketIODecoder(version: .v5)
        _ = try many.decode(text: "51-[\"x\",\(eleven)]")
        let widened = SocketIOCodec.encode(try #require(try many.decode(binary: [1])))
        #expect(widened.attachments.count == 11)
        var again = SocketIODecoder(version: .v5)
        let refusal = #expect(throws: SocketIOError.self) { try again.decode(text: widened.text) }
        #expect(refusal?.code == .tooManyAttachments)
    }

    @Test("Binary with no packet, and text while attachments are due")
    func reconstructionErrors() throws {
        var decoder = SocketIODecoder(version: .v5)
        let stray = #expect(throws: SocketIOError.self) { try decoder.decode(binary: [1]) }
        #expect(stray?.message == "got binary data when not reconstructing a packet")
        _ = try decoder.decode(text: #"51-["hello",{"_placeholder":true,"num":0}]"#)
        let plain = #expect(throws: SocketIOError.self) { try decoder.decode(text: #"2["hello"]"#) }
        #expect(plain?.message == "got plaintext data when reconstructing a packet")
        #expect(decoder.isReconstructing)
        decoder.reset()  // socket.io-parser's destroy()
        #expect(try decoder.decode(text: #"2["hello"]"#)?.eventName == "hello")
    }

    @Test("Attachments past the size limit: refused once, the rest let by, the decoder goes on")
    func attachmentsTooLarge() throws {
        var decoder = SocketIODecoder(version: .v5, maxAttachmentBytes: 10)
        #expect(try decoder.decode(text: #"53-["e",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1},{"_placeholder":true,"num":2}]"#) == nil)
        #expect(try decoder.decode(binary: Array(repeating: 1, count: 6)) == nil)
        let refused = #expect(throws: SocketIOError.self) { try decoder.decode(binary: Array(repeating: 2, count: 6)) }
        #expect(refused?.code == .attachmentsTooLarge && !decoder.isReconstructing)
        #expect(try decoder.decode(binary: [3]) == nil)  // the third, still due: not a stray
        let stray = #expect(throws: SocketIOError.self) { try decoder.decode(binary: [4]) }
        #expect(stray?.code == .binaryWhileNotReconstructing)
        #expect(try decoder.decode(text: #"51-["e",{"_placeholder":true,"num":0}]"#) == nil)
        #expect(try decoder.decode(binary: Array(repeating: 5, count: 10))?.attachments == [Array(repeating: 5, count: 10)])
    }

    @Test("Ack ids too large for 64 bits are refused, not wrapped")
    func hugeAckID() throws {
        #expect(try decodeOne("218446744073709551615[\"x\"]")?.ackID == UInt64.max)
        for id in [0, 9, 10, 99, 100, 4_294_967_296, UInt64.max] {
            #expect(SocketIOCodec.encode(SocketPacket(.ack, ackID: id, data: [1])).text == "3\(id)[1]")
        }
        let twelve = SocketIOCodec.encode(SocketPacket(.event, data: .array(["e"] + (0..<12).map { .binary([UInt8($0)]) })))
        #expect(twelve.text.hasPrefix(#"512-["e",{"_placeholder":true,"num":0},"#))
        #expect(twelve.text.hasSuffix(#"{"_placeholder":true,"num":11}]"#))
        #expect(twelve.attachments == (0..<12).map { [UInt8($0)] })
        let error = #expect(throws: SocketIOError.self) { try decodeOne("218446744073709551616[\"x\"]") }
        #expect(error?.code == .invalidAckID)
    }

    @Test("Payload numbers and escapes reach the packet unchanged")
    func fidelity() throws {
        let text = #"2["n",12345678901234567890,0.1,-0.0,"\ud83d\ude00","\u2028",{"b":1,"a":2}]"#
        let packet = try #require(try decodeOne(text))
        #expect(JSONValue.array(packet.arguments).jsonText == #"[12345678901234567890,0.1,-0.0,"\ud83d\ude00","\u2028",{"b":1,"a":2}]"#)
        #expect(SocketIOCodec.encode(packet).text == text)
    }

    @Test("Random payloads with binary anywhere round-trip", arguments: 0..<6)
    func randomBinary(seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        for _ in 0..<100 {
            let arguments = (0..<Int.random(in: 0...4, using: &random)).map { _ in RandomPayload.value(depth: 0, using: &random) }
            let isAck = Bool.random(using: &random)
            let namespace = Bool.random(using: &random) ? "/" : "/ns-\(Int.random(in: 0...9, using: &random))"
            let ackID: UInt64? = Bool.random(using: &random) ? UInt64.random(in: 0...999_999, using: &random) : nil
            var packet = isAck
                ? SocketPacket(.ack, namespace: namespace, ackID: ackID ?? 0, data: .array(arguments))
                : SocketPacket.event("e", arguments, namespace: namespace, ackID: ackID)
            let (text, attachments) = SocketIOCodec.encode(packet)
            guard attachments.count <= SocketIOCodec.defaultMaxAttachments else { continue }
            let decoded = try #require(try decodeOne(text, attachments: attachments), "seed \(seed): \(text)")
            if !attachments.isEmpty { packet.type = isAck ? .binaryAck : .binaryEvent }
            packet.attachments = attachments
            #expect(decoded == packet, "seed \(seed): \(text)")
        }
    }
}

@Suite("Socket.IO v4 (socket.io-parser 3.4.x vectors)")
struct SocketIOv4Tests {
    @Test(
        "Invalid payloads under 3.4.x rules",
        arguments: [
            #"442["some","data""#, #"0/admin,"invalid""#, "1/admin,{}", #"2/admin,"invalid"#, "2/admin,{}",
            #"2[{"toString":"foo"}]"#, #"2[true,"foo"]"#, #"2[null,"bar"]"#,
        ]
    )
    func invalidPayload(text: String) {
        let error = #expect(throws: SocketIOError.self) { try decodeOne(text, .v4) }
        #expect(error?.code == .invalidPayload)
    }

    @Test("What 3.4.x accepts that 4.x refuses")
    func looserRules() throws {
        #expect(try decodeOne("0[]", .v4)?.data == .array([]))
        #expect(try decodeOne("0null", .v4)?.data == .null)
        #expect(try decodeOne(#"2["connect"]"#, .v4)?.eventName == "connect")
    }

    @Test(
        "The protocol README's v4 packets",
        arguments: [
            #"4/admin,"Not authorized""#, #"2/admin,456["project:delete",123]"#, "3/admin,456[]", "0/admin,", "1/admin,",
        ]
    )
    func readmePackets(text: String) throws {
        let packet = try #require(try decodeOne(text, .v4))
        #expect(SocketIOCodec.encode(packet).text == text)
    }

    @Test("Binary packets of the v4 README")
    func binary() throws {
        let event = try #require(try decodeOne(#"51-/admin,456["project:delete",{"_placeholder":true,"num":0}]"#, .v4, attachments: [[1, 2]]))
        #expect(event.ackID == 456)
        #expect(event.arguments == [.binary([1, 2])])
        let ack = try #require(try decodeOne(#"61-/admin,456[{"_placeholder":true,"num":0}]"#, .v4, attachments: [[3]]))
        #expect(ack.arguments == [.binary([3])])
    }

    // Found by scripts/fuzz.sh (socketio): a binary packet whose attachments no placeholder refers
    // to. The reference parser drops such buffers; we keep them visible on the decoded packet, and
    // encoding writes only the attachments the data holds.
    @Test("Attachments no placeholder refers to are kept when decoded, left out when encoded")
    func unreferencedAttachments() throws {
        let ack = try #require(try decodeOne("61-/", .v5, attachments: [[0x34, 0x17]]))
        #expect(ack.type == .binaryAck && ack.data == nil)
        #expect(ack.attachments == [[0x34, 0x17]])
        #expect(SocketIOCodec.encode(ack).text == "60-")
        #expect(SocketIOCodec.encode(ack).attachments.isEmpty)
        let event = try #require(try decodeOne(#"52-["a",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]"#, .v5, attachments: [[1], [2]]))
        #expect(event.arguments == [.binary([2]), .binary([1])])
        let (text, attachments) = SocketIOCodec.encode(event)
        #expect(attachments == [[2], [1]])
        #expect(try decodeOne(text, .v5, attachments: attachments)?.arguments == event.arguments)
    }

    @Test("A namespace query is split off and written back")
    func namespaceQuery() throws {
        let packet = try #require(try decodeOne("0/admin?token=1234&uid=abcd,", .v4))
        #expect(packet.namespace == "/admin")
        #expect(packet.query == "token=1234&uid=abcd")
        #expect(SocketIOCodec.encode(packet).text == "0/admin?token=1234&uid=abcd,")
    }
}

enum RandomPayload {
    static func value(depth: Int, using random: inout SplitMix64) -> JSONValue {
        switch Int.random(in: 0..<(depth > 3 ? 4 : 6), using: &random) {
        case 0: return .binary((0..<Int.random(in: 0...6, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) })
        case 1: return .string(["", "ü", "😀", "a\"b", "\u{2028}"].randomElement(using: &random)!)
        case 2: return .number(Int.random(in: -1000...1000, using: &random))
        case 3: return Bool.random(using: &random) ? .null : .bool(true)
        case 4: return .array((0..<Int.random(in: 0...3, using: &random)).map { _ in value(depth: depth + 1, using: &random) })
        default:
            return .object(JSONObject((0..<Int.random(in: 0...3, using: &random)).map { index in
                .init(key: JSONString("k\(index)"), value: value(depth: depth + 1, using: &random))
            }))
        }
    }
}
