import Testing

@testable import SocketIOProtocol

/// The byte relay's framing: heads found wherever reads split them, fields read as they are, and
/// chunked bodies followed to their end.
@Suite("HTTP framing")
struct HTTPFramingTests {
    let request = Array("POST /socket.io/?EIO=4&transport=polling&sid=abc HTTP/1.1\r\nHost: a:1\r\nContent-Length: 5\r\nConnection: keep-alive, X-Hop\r\n\r\nhello".utf8)

    /// The search resumed read by read, as the relay does it, finds the same end wherever the reads split.
    @Test("The end of a head, wherever the reads split it")
    func headEndAcrossReads() {
        let expected = request.count - 5
        for split in 1..<request.count {
            var searched = 0
            var found: Int?
            for end in [split, request.count] {
                let seen = Array(request[0..<end])
                found = seen.withUnsafeBytes { HTTPFraming.headEnd(in: $0, from: searched - 3) }
                if found != nil { break }
                searched = seen.count
            }
            #expect(found == expected, "split at \(split)")
        }
        #expect(Array("GET / HTTP/1.1\r\nHost: x\r\n".utf8).withUnsafeBytes { HTTPFraming.headEnd(in: $0, from: 0) } == nil)
    }

    @Test("A request head's parts and fields, as ranges of its bytes")
    func parsesRequest() throws {
        let end = try #require(request.withUnsafeBytes { HTTPFraming.headEnd(in: $0, from: 0) })
        try request.withUnsafeBytes { raw in
            let head = try #require(HTTPFraming.Head.parse(raw, end: end))
            #expect(String(decoding: raw[head.first], as: UTF8.self) == "POST")
            #expect(String(decoding: raw[head.second], as: UTF8.self) == "/socket.io/?EIO=4&transport=polling&sid=abc")
            #expect(String(decoding: raw[head.third], as: UTF8.self) == "HTTP/1.1")
            #expect(head.fields.count == 3)
            #expect(HTTPFraming.name(raw, head.fields[1], is: "content-length"))
            #expect(HTTPFraming.contentLength(raw, head.fields[1]) == 5)
            #expect(HTTPFraming.tokens(raw, head.fields[2]) == ["keep-alive", "x-hop"])
            #expect(String(decoding: raw[head.fields[0].line], as: UTF8.self) == "Host: a:1")
        }
    }

    @Test("Heads the relay leaves to the codec", arguments: [
        "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",  // an obsolete folded line
        "GET / HTTP/1.1\r\nContent-Length : 5\r\n\r\n",  // whitespace before the colon
        "GET / HTTP/1.1\r\n: empty\r\n\r\n",  // no name
        "GET / HTTP/1.1\nHost: a\r\n\r\n",  // a bare LF
        "GET\r\n\r\n",  // no target
    ])
    func refusesHeads(text: String) {
        let bytes = Array(text.utf8)
        let parsed = bytes.withUnsafeBytes { HTTPFraming.Head.parse($0, end: $0.count) }
        #expect(parsed == nil)
    }

    @Test("Content-Length: digits only, bounded")
    func contentLengths() {
        for (text, expected) in [("0", 0), ("1234", 1234), ("-1", nil), ("1e3", nil), ("", nil), ("1234567890123456", nil), (" 5", 5)] as [(String, Int?)] {
            let line = Array("Content-Length:\(text)\r\n".utf8)
            let value = line.withUnsafeBytes { raw -> Int? in
                var start = 15
                while start < raw.count - 2, raw[start] == 0x20 { start += 1 }
                return HTTPFraming.contentLength(raw, .init(line: 0..<(raw.count - 2), name: 0..<14, value: start..<(raw.count - 2)))
            }
            #expect(value == expected, "\(text)")
        }
    }

    let chunked = Array("4\r\nWiki\r\n7;ext=1\r\npedia i\r\nB\r\nn \r\nchunks.\r\n0\r\nTrailer: x\r\n\r\nNEXT".utf8)

    /// Fed in two parts split at every position, the data and the end are the same.
    @Test("A chunked body: its data and its end, wherever the reads split it")
    func chunkedAcrossReads() throws {
        let bodyEnd = chunked.count - 4
        for split in 0...chunked.count {
            var reader = HTTPFraming.ChunkedReader()
            var data: [UInt8] = []
            var consumed = 0
            for part in [Array(chunked[0..<split]), Array(chunked[split...])] where !reader.isDone {
                consumed += try part.withUnsafeBytes { raw in
                    try reader.read(raw) { data += raw[$0] }
                }
            }
            #expect(reader.isDone)
            #expect(consumed == bodyEnd, "split at \(split)")
            #expect(String(decoding: data, as: UTF8.self) == "Wikipedia in \r\nchunks.", "split at \(split)")
        }
    }

    @Test("Chunked bodies the relay cannot follow", arguments: [
        "z\r\n", "4\r\nWikiX\r\n", "4\nWiki", "\r\n", "10000000000000000\r\n",
    ])
    func refusesChunks(text: String) {
        var reader = HTTPFraming.ChunkedReader()
        #expect(throws: HTTPFraming.ChunkedReader.Failure.self) {
            try Array(text.utf8).withUnsafeBytes { raw in _ = try reader.read(raw) { _ in } }
        }
    }
}
