import Foundation
import Testing
@testable import SocketIOProtocol

/// Feeds the same frames to Debian's node-socket.io-parser (the reference JS decoder) and to ours.
///
/// Debian ships 4.2.1; siotap follows the stricter 4.2.4+ rules (reserved event names, plain-object
/// CONNECT payloads, the attachment limit, integer attachment counts). Those vectors are listed in
/// `stricterThanDebian`: for them the test checks that the reference accepts and we refuse, so a
/// change on either side shows up.
@Suite("Reference JS parser agrees")
struct ReferenceParserTests {
    enum Frame { case text(String), binary([UInt8]) }

    static let stricterThanDebian: Set<String> = [
        "0[]", "0null", #"2["connect"]"#, #"2["disconnect","123"]"#, #"2["connect_error"]"#, #"2["newListener"]"#,
        "51.23-", #"511-["a"]"#,
    ]

    /// The reference parser keeps its reconstructor after a zero-attachment binary packet and then
    /// refuses the next text packet; JS encoders never send such packets, and an observer that
    /// copied the slip would lose the traffic after one, so siotap decodes on.
    static let zeroAttachmentSlip = #"50-["zero"]"#

    static var vectors: [[Frame]] {
        var cases: [[Frame]] = [
            #"0/woot,{"token":"123"}"#, "1/woot,", #"2["a",1,{}]"#, #"2[1,"a",{}]"#, #"2/test,1["a",1,{}]"#, #"3123["a",1,{}]"#,
            #"4"Unauthorized""#, #"4{"message":"Unauthorized"}"#, #"2["foo"]"#, #"2/admin,["bar"]"#, #"212["foo"]"#, #"3/admin,13["bar"]"#,
            "1", "0", "0/admin", #"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#, #"4{"message":"Not authorized"}"#,
            #"442["some","data""#, #"0/admin,"invalid""#, "0[]", "1/admin,{}", #"2/admin,"invalid"#, "2/admin,{}",
            #"2[{"toString":"foo"}]"#, #"2[true,"foo"]"#, #"2[null,"bar"]"#, #"2["connect"]"#, #"2["disconnect","123"]"#,
            "999", "7", "5", "51", "5a-", "51.23-", #"511-["a"]"#, "2[]", "3{}", "0null", #"2["connect_error"]"#, #"2["newListener"]"#,
            #"2["n",12345678901234567890,0.1,-0.0,"\ud83d\ude00","\u2028",{"b":1,"a":2}]"#, #"2[" \t\n",[[[[{}]]]]]"#,
            #"0/admin?x=1,{}"#, #"2/a,b,["x"]"#,
        ].map { [Frame.text($0)] }
        cases += [
            [.text(#"51-/cool,23["a",{"_placeholder":true,"num":0}]"#), .binary(Array("abc".utf8))],
            [.text(#"61-/back,127["a",{"_placeholder":true,"num":0},{}]"#), .binary(Array("xxx".utf8))],
            [.text(#"52-["m",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#), .binary([1, 2, 3]), .binary([4, 5, 6])],
            [.text(#"51-["hello",{"_placeholder":true,"num":"splice"}]"#), .binary([1])],
            [.text(#"51-["hello",{"_placeholder":true,"num":1}]"#), .binary([1])],
            [.binary([1, 2])],
            [.text(#"51-["hello",{"_placeholder":true,"num":0}]"#), .text(#"2["hello"]"#)],
            [.text(#"50-["zero"]"#), .text(#"2["after"]"#)],
        ]
        var random = SplitMix64(seed: 42)
        for _ in 0..<150 {
            let arguments = (0..<Int.random(in: 0...4, using: &random)).map { _ in RandomPayload.value(depth: 0, using: &random) }
            let packet = SocketPacket.event("r", arguments, namespace: Bool.random(using: &random) ? "/" : "/n", ackID: Bool.random(using: &random) ? 5 : nil)
            let (text, attachments) = SocketIOCodec.encode(packet)
            guard attachments.count <= SocketIOCodec.defaultMaxAttachments else { continue }
            cases.append([.text(text)] + attachments.map { .binary($0) })
        }
        return cases
    }

    struct Outcome {
        var packets: [JSONValue] = []
        var error: String?
    }

    static func ours(_ frames: [Frame]) -> Outcome {
        var decoder = SocketIODecoder(version: .v5, maxAttachments: SocketIOCodec.defaultMaxAttachments)
        var outcome = Outcome()
        do {
            for frame in frames {
                let packet: SocketPacket?
                switch frame {
                case .text(let text): packet = try decoder.decode(text: text)
                case .binary(let bytes): packet = try decoder.decode(binary: bytes)
                }
                guard let packet else { continue }
                var members: [JSONObject.Member] = [
                    .init(key: JSONString("type"), value: .number(Int(packet.type.rawValue))),
                    .init(key: JSONString("nsp"), value: .string(packet.namespace)),
                ]
                if let id = packet.ackID { members.append(.init(key: JSONString("id"), value: .number(JSONNumber(id)))) }
                // Through text, so binary becomes {"$binary": …} as the script writes Buffers.
                if let data = packet.data { members.append(.init(key: JSONString("data"), value: try JSONValue.parse(data.jsonText))) }
                outcome.packets.append(.object(JSONObject(members)))
            }
        } catch {
            outcome.error = (error as? SocketIOError)?.message ?? "\(error)"
        }
        return outcome
    }

    static func reference(_ cases: [[Frame]]) throws -> [Outcome] {
        let input = JSONValue.array(cases.map { frames in
            .object(["frames": .array(frames.map { frame in
                switch frame {
                case .text(let text): .object(["text": .string(text)])
                case .binary(let bytes): .object(["binary": .string(Base64.encode(bytes))])
                }
            })])
        }).jsonText
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["node", root.appendingPathComponent("scripts/reference/socketio-decode.js").path]
        process.environment = ["NODE_PATH": "/usr/share/nodejs", "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin"]
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "node failed: is node-socket.io-parser installed? (scripts/setup-peers.sh)")
        let results = try #require(try JSONValue.parse(bytes: output).arrayValue)
        return results.map { Outcome(packets: $0["packets"]?.arrayValue ?? [], error: $0["error"]?.stringValue) }
    }

    @Test("Every vector decodes to the same packets, or the same error")
    func agree() throws {
        let cases = Self.vectors
        let theirs = try Self.reference(cases)
        try #require(theirs.count == cases.count)
        for (frames, reference) in zip(cases, theirs) {
            let mine = Self.ours(frames)
            guard case .text(let first) = frames[0] else {
                #expect(mine.error == reference.error)
                continue
            }
            if first == Self.zeroAttachmentSlip {
                #expect(reference.error == "got plaintext data when reconstructing a packet")
                #expect(mine.error == nil)
                #expect(mine.packets.count == 2)
                continue
            }
            if Self.stricterThanDebian.contains(first) {
                #expect(reference.error == nil, "Debian's parser now refuses \(first): drop it from stricterThanDebian")
                #expect(mine.error != nil, "\(first) must be refused under 4.2.4+ rules")
                continue
            }
            #expect(mine.error == reference.error, "\(first)")
            #expect(mine.packets.count == reference.packets.count, "\(first)")
            for (ours, theirs) in zip(mine.packets, reference.packets) {
                #expect(sameJSON(ours, theirs), "\(first): ours \(ours.jsonText), reference \(theirs.jsonText)")
            }
        }
    }
}

/// Equal as JavaScript sees values: numbers as doubles, objects as unordered maps.
func sameJSON(_ a: JSONValue, _ b: JSONValue) -> Bool {
    switch (a, b) {
    case (.number(let x), .number(let y)): return x.doubleValue == y.doubleValue
    case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy(sameJSON)
    case (.object(let x), .object(let y)):
        let keys = Set(x.keys)
        return keys == Set(y.keys) && keys.allSatisfy { sameJSON(x[$0]!, y[$0]!) }
    default: return a == b
    }
}
