import Foundation
import PeerSupport
import SocketIOProtocol
import Testing

/// The msgpack codec against the reference implementation (msgpack-python, through
/// scripts/reference/msgpack_vectors.py): each vector decodes to the value it was made from, and
/// encodes back to the same bytes.
@Suite("msgpack")
struct MsgPackTests {
    struct Vector: Decodable {
        var name: String
        var hex: String
        var json: JSONValue?
        var float32: Double?
    }

    /// Binary as the reference's `{"$binary": base64}`, so trees compare.
    static func comparable(_ value: JSONValue) -> JSONValue {
        switch value {
        case .binary(let bytes): .object(["$binary": .string(Base64.encode(bytes))])
        case .array(let items): .array(items.map(comparable))
        case .object(let object): .object(JSONObject(object.members.map { .init(key: $0.key, value: comparable($0.value)) }))
        default: value
        }
    }

    @Test("Reference vectors decode exactly and encode back to the same bytes")
    func referenceVectors() throws {
        let output = try PeerPaths.runPython("msgpack_vectors.py")
        let lines = String(decoding: output, as: UTF8.self).split(separator: "\n")
        #expect(lines.count >= 15)
        for line in lines {
            let vector = try JSONValueDecoder().decode(Vector.self, from: JSONValue.parse(String(line)))
            let bytes = hexBytes(vector.hex)
            let value = try MsgPackCodec.decode(bytes)
            if let expected = vector.json {
                #expect(Self.comparable(value.jsonValue) == expected, "\(vector.name)")
            } else if let widened = vector.float32 {
                guard case .float32(let number) = value, case .number(let literal)? = Optional(value.jsonValue) else {
                    Issue.record("\(vector.name): not a float32: \(value)")
                    continue
                }
                #expect(number == Float(widened), "\(vector.name)")
                // Shown as the float32 it is (0.1), not as the float64 it widens to.
                #expect(Float(literal.literal) == number && literal.literal.count <= 16, "\(vector.name): \(literal.literal)")
            }
            #expect(MsgPackCodec.encode(value) == bytes, "\(vector.name) encodes back")
            // The direct paths (no tree in between) agree with the tree's.
            #expect(try MsgPackCodec.decodeJSON(bytes) == value.jsonValue, "\(vector.name) straight to JSON")
            if vector.json != nil, !vector.name.hasPrefix("ext") {
                var direct: [UInt8] = []
                MsgPackCodec.write(json: value.jsonValue, to: &direct)
                #expect(direct == MsgPackCodec.encode(value.jsonValue.msgPackValue), "\(vector.name) straight from JSON")
            }
        }
    }

    @Test("Integers keep their sign and size beyond 2^53; floats, binary and strings stay apart")
    func exactness() throws {
        #expect(try MsgPackCodec.decode([0xCF, 0xAB, 0x54, 0xA9, 0x8C, 0xEB, 0x1F, 0x0A, 0xD2]).jsonValue.jsonText == "12345678901234567890")
        #expect(try MsgPackCodec.decode([0xD0, 0x05]) == .uint(5), "a positive int8 is the same number as a uint")
        #expect(try MsgPackCodec.decode([0xC4, 0x01, 0x61]) == .binary([0x61]))
        #expect(try MsgPackCodec.decode([0xA1, 0x61]) == .string("a"))
        #expect(try MsgPackCodec.decode([0xCA, 0x3D, 0xCC, 0xCC, 0xCD]).jsonValue.jsonText == "0.1")
        #expect(try MsgPackCodec.decode([0xCB, 0x7F, 0xF8, 0, 0, 0, 0, 0, 0]).jsonValue.jsonText == #"{"$float":"nan"}"#)
        #expect(JSONValue.number(JSONNumber(UInt64.max)).msgPackValue == .uint(UInt64.max))
        #expect(try JSONValue.parse("-12345678901234").msgPackValue == .int(-12_345_678_901_234))
        #expect(try JSONValue.parse("1.5").msgPackValue == .float64(1.5))
    }

    @Test(arguments: [
        ([UInt8]([0x92, 0x01]), MsgPackError.Code.truncated), ([0xC1], .reservedByte), ([0xA2, 0xC3, 0x28], .invalidUTF8),
        ([0x01, 0x02], .trailingBytes), ([0xDD, 0xFF, 0xFF, 0xFF, 0xFF], .truncated), ([0xC6, 0xFF, 0xFF, 0xFF, 0xFF], .truncated),
        ([UInt8](repeating: 0x91, count: 600) + [0x01], .tooDeep),
    ])
    func refuses(bytes: [UInt8], code: MsgPackError.Code) {
        #expect(throws: MsgPackError.self) { try MsgPackCodec.decode(bytes) }
        do { _ = try MsgPackCodec.decode(bytes) } catch { #expect(error.code == code) }
    }

    @Test("notepack's undefined (fixext 1, type 0, data 0) reads as JavaScript reads it: a map's member left out, null in an array, no data at the top")
    func notepackUndefined() throws {
        // socket.io's CONNECT answer without recovery: {type: 0, nsp: "/", data: {sid: "S", pid: undefined}}.
        let connect: [UInt8] = [0x83, 0xA4] + Array("type".utf8) + [0x00, 0xA3] + Array("nsp".utf8) + [0xA1, 0x2F, 0xA4] + Array("data".utf8)
            + [0x82, 0xA3] + Array("sid".utf8) + [0xA1, 0x53, 0xA3] + Array("pid".utf8) + [0xD4, 0x00, 0x00]
        let packet = try SocketIOMsgPack.decode(connect)
        #expect(packet.data?.jsonText == #"{"sid":"S"}"#)
        #expect(packet.data?["pid"] == nil)
        // In an array, and through the tree as well as the direct path.
        let array: [UInt8] = [0x92, 0x01, 0xD4, 0x00, 0x00]
        #expect(try MsgPackCodec.decodeJSON(array).jsonText == "[1,null]")
        #expect(try MsgPackCodec.decode(array).jsonValue.jsonText == "[1,null]")
        #expect(try MsgPackCodec.decode([0x81, 0xA1, 0x61, 0xD4, 0x00, 0x00]).jsonValue.jsonText == "{}")
        // Another fixext of type 0 is no undefined: kept as an extension.
        #expect(try MsgPackCodec.decodeJSON([0xD4, 0x00, 0x07]).jsonText == #"{"$ext":{"type":0,"data":"Bw=="}}"#)
    }

    @Test("Maps as keys of maps as keys: each key's text is cut, not escaped again at every level (a fuzzer's 144 bytes took minutes)", .timeLimit(.minutes(1)))
    func nestedKeysStayBounded() throws {
        let input = hexBytes("84a47479706502a464617461828282822a828181818181818181818181818181818181818181818181818181ffff82828282828282ffffffffffffffffff1fffffffffffffffffffffffff40404040ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff0c0e0e0e0e0e0e0e0e0effffffffffff7fffff6407")
        func longestKey(_ value: JSONValue) -> Int {
            switch value {
            case .object(let object): object.members.map { max($0.key.escaped.utf8.count, longestKey($0.value)) }.max() ?? 0
            case .array(let items): items.map(longestKey).max() ?? 0
            default: 0
            }
        }
        // The fuzzer's input: refused (bytes after its value), after bounded work.
        #expect(throws: (any Error).self) { try SocketIOMsgPack.decode(input) }
        // Thirty maps, each the key of the next: {{{…{1: 0}…: 0}: 0}: 0}.
        var nested: [UInt8] = [0x01]
        for _ in 0..<30 { nested = [0x81] + nested + [0x00] }
        let bound = 2 * (MsgPackValue.longestKeyText + 3)
        #expect(longestKey(try MsgPackCodec.decode(nested).jsonValue) <= bound)
        #expect(longestKey(try MsgPackCodec.decodeJSON(nested)) <= bound)
        // A key that fits is its JSON text, whole.
        let short = try MsgPackCodec.decode([0x81, 0x81, 0x01, 0x02, 0x03]).jsonValue
        #expect(short.jsonText == #"{"{\"1\":2}":3}"#)
    }

    @Test("Socket.IO packets of the msgpack parser: the map to a packet and back")
    func packets() throws {
        let event = try SocketIOMsgPack.decode(hexBytes("84a47479706502a46461746193a46368617481a16ecfab54a98ceb1f0ad2c4020102a36e7370a12fa2696407"))
        #expect(event.type == .event && event.namespace == "/" && event.ackID == 7 && event.eventName == "chat")
        #expect(event.arguments == [try JSONValue.parse(#"{"n":12345678901234567890}"#), .binary([1, 2])])
        #expect(try SocketIOMsgPack.decode(SocketIOMsgPack.encode(event)) == event)
        // python-socketio writes type, data, nsp (and id): the encoding is the same bytes.
        #expect(SocketIOMsgPack.encode(event) == hexBytes("84a47479706502a46461746193a46368617481a16ecfab54a98ceb1f0ad2c4020102a36e7370a12fa2696407"))
        let connect = try SocketIOMsgPack.decode(MsgPackCodec.encode(.map([
            .init(key: .string("type"), value: .uint(0)), .init(key: .string("data"), value: .null), .init(key: .string("nsp"), value: .string("/admin")),
        ])))
        #expect(connect.type == .connect && connect.data == nil && connect.namespace == "/admin")
        #expect(throws: SocketIOError.self) { try SocketIOMsgPack.decode([0x01]) }
        #expect(throws: SocketIOError.self) { try SocketIOMsgPack.decode(MsgPackCodec.encode(.map([.init(key: .string("type"), value: .uint(2)), .init(key: .string("nsp"), value: .string("/"))]))) }
        #expect(SocketIOMsgPack.looksLikePacket([0x84]) && !SocketIOMsgPack.looksLikePacket([0x01, 0x02]))
    }
}
