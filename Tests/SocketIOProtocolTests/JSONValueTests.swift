import Testing
@testable import SocketIOProtocol

@Suite("JSON that keeps the wire text")
struct JSONValueTests {
    @Test(
        "Literals survive a parse and a write unchanged",
        arguments: [
            "12345678901234567890", "0.1", "-0.0", "1e400", "-1.5E-7", "0",
            #""\ud83d\ude00""#, #""\u2028 and \u2029""#, "\"\u{2028}\"", #""\/ \" \\ \b\f\n\r\t""#, #""\u00e9""#,
            #"{"b":1,"a":2,"b":3}"#, #"[1,[2,[3,{"x":[]}]],{}]"#, "true", "false", "null", #""""#,
        ]
    )
    func literalsSurvive(text: String) throws {
        #expect(try JSONValue.parse(text).jsonText == text)
    }

    @Test("Whitespace is accepted and dropped from the compact form, literals kept")
    func whitespace() throws {
        let value = try JSONValue.parse(" { \"a\" :\t[ 1.50 , \"x\" ]\r\n } ")
        #expect(value.jsonText == #"{"a":[1.50,"x"]}"#)
    }

    @Test("Escaping writes what JSON.stringify writes: two-character escapes, \\u00xx for the other controls, the rest as it is")
    func escapingLikeStringify() throws {
        #expect(JSONString.escape("plain é \u{2028} 😀") == "plain é \u{2028} 😀")
        #expect(JSONString.escape("\"\\\u{08}\u{0C}\n\r\t") == #"\"\\\b\f\n\r\t"#)
        #expect(JSONString.escape("\u{00}\u{1F}\u{7F}") == #"\u0000\u001f"# + "\u{7F}")
        let every = String(decoding: (0..<128).map { UInt8($0) }, as: UTF8.self) + "é 😀 \u{2028}"
        var appended = Array("prefix ".utf8)
        JSONString.appendEscaped(every, to: &appended)
        #expect(String(decoding: appended, as: UTF8.self) == "prefix " + JSONString.escape(every))
        #expect(try JSONValue.parse("\"\(JSONString.escape(every))\"").stringValue == every)
    }

    @Test("Escaping finds a character to escape at any position, inside or outside the eight-byte steps")
    func escapingAtEveryPosition() {
        // JSON.stringify's table, character by character: the reference the word-at-a-time scan
        // must agree with.
        func stringify(_ text: String) -> String {
            var out = ""
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\u{08}": out += "\\b"
                case "\u{0C}": out += "\\f"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                case _ where scalar.value < 0x20: out += "\\u00" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
                default: out.unicodeScalars.append(scalar)
                }
            }
            return out
        }
        let specials: [Character] = ["\"", "\\", "\u{00}", "\u{1F}", "\n", " ", "!", "#", "[", "]", "\u{7F}", "é", "😀"]
        for length in 1...24 {
            for position in 0..<length {
                for special in specials {
                    var text = String(repeating: "a", count: length)
                    let index = text.index(text.startIndex, offsetBy: position)
                    text.replaceSubrange(index...index, with: String(special))
                    var out: [UInt8] = []
                    JSONString.appendEscaped(text, to: &out)
                    #expect(String(decoding: out, as: UTF8.self) == stringify(text), "\(special.unicodeScalars.first!.value) at \(position) of \(length)")
                }
            }
        }
    }

    @Test("Escapes decode to the right text")
    func decodedValues() throws {
        #expect(try JSONValue.parse(#""\ud83d\ude00""#).stringValue == "😀")
        #expect(try JSONValue.parse(#""\u2028""#).stringValue == "\u{2028}")
        #expect(try JSONValue.parse(#""a\nb\u0041""#).stringValue == "a\nbA")
        #expect(try JSONValue.parse(#""\ud83d""#).stringValue == "\u{FFFD}")  // lone surrogate
        #expect(try JSONValue.parse(#""\ud83d""#).jsonText == #""\ud83d""#)  // …but its text is kept
    }

    @Test("Equal strings compare equal whatever their escapes")
    func semanticStringEquality() throws {
        #expect(try JSONValue.parse(#""\u00e9""#) == JSONValue.parse("\"é\""))
        #expect(try JSONValue.parse(#""\u00e9""#).hashValue == JSONValue.parse("\"é\"").hashValue)
    }

    @Test(
        "Short strings are held inline, long ones as a String: both compare, hash and write the same",
        arguments: ["", "a", "fifteen bytes!!", "sixteen bytes!!!", "é", "ünïcödé ☃ text", "\\u00e9", "a\\\"b", "0123456789abcdefghij"]
    )
    func inlineAndStringStorage(escaped: String) throws {
        let parsed = try JSONValue.parse("\"\(escaped)\"")
        guard case .string(let fromWire) = parsed else { Issue.record("not a string"); return }
        let fromSwift = JSONString(fromWire.value)
        #expect(fromWire.escaped == escaped)
        #expect(parsed.jsonText == "\"\(escaped)\"")
        #expect(fromWire == fromSwift)
        #expect(fromWire.hashValue == fromSwift.hashValue)
        #expect(fromWire.hasValue(fromWire.value))
        #expect(!fromWire.hasValue(fromWire.value + "x"))
        #expect(try JSONValue.parse(#"{"\#(escaped)":1}"#)[fromWire.value] == .number(1))
    }

    @Test("Different bytes without escapes are different strings, even of one length")
    func differentStrings() throws {
        #expect(try JSONValue.parse(#""abc""#) != JSONValue.parse(#""abd""#))
        #expect(try JSONValue.parse(#""0123456789abcdefX""#) != JSONValue.parse(#""0123456789abcdefY""#))
        #expect(try JSONValue.parse("1.0") != JSONValue.parse("1"))
    }

    @Test(
        "An integer literal gives its value; anything else, or too large for Int, gives nil",
        arguments: [
            ("0", 0), ("-0", 0), ("42", 42), ("-17", -17), ("9223372036854775807", Int.max), ("-9223372036854775808", Int.min),
            ("9223372036854775808", nil), ("-9223372036854775809", nil), ("1.0", nil), ("1e3", nil), ("-1E+2", nil),
        ] as [(String, Int?)]
    )
    func intValue(literal: String, expected: Int?) throws {
        #expect(try JSONValue.parse(literal).numberValue?.intValue == expected)
        #expect(try JSONValue.parse(literal).numberValue?.intValue == Int(literal))
    }

    @Test("Duplicate keys: all kept in order, lookup gives the last, like JSON.parse")
    func duplicateKeys() throws {
        let value = try JSONValue.parse(#"{"a":1,"a":2}"#)
        #expect(value.objectValue?.members.count == 2)
        #expect(value["a"] == .number(2))
    }

    @Test(
        "Invalid JSON is refused with a code and an offset",
        arguments: [
            ("", JSONParseError.Code.unexpectedEnd), ("[1,]", .unexpectedCharacter), ("01", .trailingCharacters),
            ("1.", .invalidNumber), ("-", .unexpectedEnd), ("+1", .unexpectedCharacter), ("\"a\u{01}\"", .controlCharacterInString),
            (#""\x41""#, .invalidEscape), (#""\u12G4""#, .invalidEscape), ("{\"a\" 1}", .unexpectedCharacter),
            ("[1 2]", .unexpectedCharacter), ("nul", .unexpectedEnd), ("tru e", .unexpectedCharacter), ("{'a':1}", .unexpectedCharacter),
            ("[\"abc", .unexpectedEnd), ("1 2", .trailingCharacters), ("NaN", .unexpectedCharacter),
        ]
    )
    func invalid(text: String, code: JSONParseError.Code) {
        let error = #expect(throws: JSONParseError.self) { try JSONValue.parse(text) }
        #expect(error?.code == code)
    }

    @Test("Nesting deeper than the limit is refused, not a stack overflow")
    func tooDeep() throws {
        let deep = String(repeating: "[", count: JSONValue.maximumDepth + 1) + String(repeating: "]", count: JSONValue.maximumDepth + 1)
        let error = #expect(throws: JSONParseError.self) { try JSONValue.parse(deep) }
        #expect(error?.code == .tooDeep)
        let ok = String(repeating: "[", count: JSONValue.maximumDepth) + String(repeating: "]", count: JSONValue.maximumDepth)
        #expect(try JSONValue.parse(ok).jsonText == ok)
        let deepObject = String(repeating: "{\"a\":", count: 10_000) + "1" + String(repeating: "}", count: 10_000)
        #expect(throws: JSONParseError.self) { try JSONValue.parse(deepObject) }
    }

    @Test("Escaping a Swift string writes what JSON.stringify writes")
    func escaping() {
        #expect(JSONValue.string("a\"b\\c\n\u{01}\u{2028}😀").jsonText == #""a\"b\\c\n\u0001"# + "\u{2028}😀\"")
        #expect(JSONValue.string("plain").jsonText == "\"plain\"")
        #expect(JSONValue.string("a\"b").stringValue == "a\"b")
    }

    @Test("Random JSON (deep, unicode, odd numbers) round-trips exactly", arguments: 0..<8)
    func randomRoundTrip(seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        for _ in 0..<200 {
            let text = RandomJSON.value(depth: 0, maxDepth: 12, using: &random)
            let parsed = try JSONValue.parse(text)
            #expect(parsed.jsonText == text, "seed \(seed)")
            // A second trip through the decoded model changes nothing either.
            #expect(try JSONValue.parse(parsed.jsonText) == parsed)
        }
    }
}

/// Random compact JSON text with the awkward parts real payloads have.
enum RandomJSON {
    static let strings = [
        "", "hello", "😀", "\\ud83d\\ude00", "\\u2028", "\u{2028}", "é", "\\u00e9", "\\\"quoted\\\"", "back\\\\slash",
        "tab\\t", "\\/", "日本語", "\\u0000", "line\\nbreak", "_placeholder", "{\\\"not\\\":\\\"json\\\"}",
    ]
    static let numbers = ["0", "-0", "-0.0", "1", "42", "12345678901234567890", "0.1", "1e400", "-1.5E-7", "3.14159265358979323846", "9007199254740993"]

    static func value(depth: Int, maxDepth: Int, using random: inout SplitMix64) -> String {
        let choice = depth >= maxDepth ? Int.random(in: 0..<5, using: &random) : Int.random(in: 0..<8, using: &random)
        switch choice {
        case 0: return "null"
        case 1: return Bool.random(using: &random) ? "true" : "false"
        case 2: return numbers.randomElement(using: &random)!
        case 3, 4: return "\"" + strings.randomElement(using: &random)! + "\""
        case 5:
            let count = Int.random(in: 0..<5, using: &random)
            return "[" + (0..<count).map { _ in value(depth: depth + 1, maxDepth: maxDepth, using: &random) }.joined(separator: ",") + "]"
        default:
            let count = Int.random(in: 0..<5, using: &random)
            return "{" + (0..<count).map { _ in
                "\"" + strings.randomElement(using: &random)! + "\":" + value(depth: depth + 1, maxDepth: maxDepth, using: &random)
            }.joined(separator: ",") + "}"
        }
    }
}
