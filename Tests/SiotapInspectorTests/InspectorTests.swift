import NIOCore
import NIOHTTP1
import SocketIOProtocol
import SocketIOTransport
import Synchronization
import Testing
import TrafficCapture

@testable import SiotapInspector

/// The inspector's feed (what a page is sent, and what a selection takes) and its server on loopback.
@Suite("Web inspector")
struct InspectorTests {
    /// Two conns: c1 with an event, its ack and its close; c2 with a session and an event.
    static let lines = [
        #"{"seq":1,"ts":"2026-11-27T10:33:41.682056Z","kind":"session","conn":"c1","url":"/socket.io/?EIO=4&transport=websocket","eio":4,"transport":"websocket"}"#,
        #"{"seq":2,"ts":"2026-11-27T10:33:41.719792Z","kind":"packet","conn":"c1","dir":"c2s","transport":"websocket","type":"EVENT","nsp":"/","id":1,"event":"chat","args":[12345678901234567890,"caf\u00e9"],"raw":"21[\"chat\",12345678901234567890,\"caf\\u00e9\"]"}"#,
        #"{"seq":3,"ts":"2026-11-27T10:33:41.721876Z","kind":"packet","conn":"c1","dir":"s2c","transport":"websocket","type":"ACK","nsp":"/","id":1,"args":[],"raw":"31[]","latency_ms":2.084}"#,
        #"{"seq":4,"ts":"2026-11-27T10:33:41.730000Z","kind":"session","conn":"c2","url":"/socket.io/?EIO=4&transport=polling","eio":4,"transport":"polling"}"#,
        #"{"seq":5,"ts":"2026-11-27T10:33:41.740000Z","kind":"packet","conn":"c2","dir":"c2s","transport":"polling","type":"EVENT","nsp":"/","event":"chat","args":[1],"raw":"2[\"chat\",1]"}"#,
        #"{"seq":6,"ts":"2026-11-27T10:33:41.778011Z","kind":"close","conn":"c1","by":"client","reason":"client closed the websocket"}"#,
    ]

    static func feed(capacity: Int = 100) throws -> InspectorFeed {
        let feed = InspectorFeed(source: "test.jsonl", capacity: capacity)
        for line in lines { feed.add(try CaptureRecord(jsonLine: line), line: line) }
        return feed
    }

    @Test("A page opened late gets the last records held, how many are gone, and then every new line once")
    func heldAndLive() throws {
        let feed = InspectorFeed(source: "test.jsonl", capacity: 4)
        let received = Mutex<[String]>([])
        for line in Self.lines.prefix(5) { feed.add(try CaptureRecord(jsonLine: line), line: line) }
        let id = feed.watch(start: { held, dropped in
            received.withLock { $0 = held.map(\.line) + ["dropped \(dropped)"] }
        }, then: { line in received.withLock { $0.append(line) } })
        #expect(received.withLock { $0 } == Array(Self.lines[1..<5]) + ["dropped 1"])
        feed.add(try CaptureRecord(jsonLine: Self.lines[5]), line: Self.lines[5])
        #expect(received.withLock { $0.last } == Self.lines[5])
        feed.unwatch(id)
        feed.add(try CaptureRecord(jsonLine: Self.lines[0]), line: Self.lines[0])
        #expect(received.withLock { $0.count } == 6)
    }

    @Test("Past the capacity the oldest go, in steps, and what is held and counted stays exact")
    func bounded() throws {
        let feed = InspectorFeed(source: "test.jsonl", capacity: 8)
        for index in 1...100 {
            let line = #"{"seq":\#(index),"ts":"2026-11-27T10:33:41.682056Z","kind":"close","conn":"c\#(index)","by":"client","reason":"gone"}"#
            feed.add(try CaptureRecord(jsonLine: line), line: line)
        }
        var seen: (seqs: [Int], dropped: Int) = ([], 0)
        let id = feed.watch(start: { held, dropped in seen = (held.map(\.record.seq), dropped) }, then: { _ in })
        feed.unwatch(id)
        #expect(seen.seqs == Array(93...100) && seen.dropped == 92)
    }

    @Test("Large records are held by their bytes too: the oldest go, and the count of what went stays exact")
    func boundedInBytes() throws {
        let feed = InspectorFeed(source: "test.jsonl", capacity: 1_000, capacityBytes: 20_000)
        let padding = String(repeating: "x", count: 2_000)
        for index in 1...30 {
            let line = #"{"seq":\#(index),"ts":"2026-11-27T10:33:41.682056Z","kind":"close","conn":"c1","by":"client","reason":"\#(padding)"}"#
            feed.add(try CaptureRecord(jsonLine: line), line: line)
        }
        var seen: (seqs: [Int], dropped: Int) = ([], 0)
        let id = feed.watch(start: { held, dropped in seen = (held.map(\.record.seq), dropped) }, then: { _ in })
        feed.unwatch(id)
        #expect(seen.seqs.count <= 5 && seen.seqs.last == 30)
        #expect(seen.dropped + seen.seqs.count == 30 && seen.seqs == Array((31 - seen.seqs.count)...30))
    }

    @Test("A selection takes a conn and --filter's terms; its export adds each selected conn's session and close")
    func selection() throws {
        let feed = try Self.feed()
        let chats = feed.select(conn: nil, filter: try CaptureFilter("event=chat")).map(\.record.seq)
        #expect(chats == [2, 5])
        #expect(feed.select(conn: "c1", filter: CaptureFilter()).map(\.record.seq) == [1, 2, 3, 6])
        let exported = feed.select(conn: "c1", filter: try CaptureFilter("event=chat"), forExport: true)
        #expect(exported.map(\.record.seq) == [1, 2, 6])
        #expect(exported[1].line == Self.lines[1], "the line as the capture has it")
    }

    @Test("The server: the page, --filter's errors, the export, the report, and the live feed over a WebSocket")
    func server() async throws {
        let feed = try Self.feed()
        let report = Array(#"{"equal":false,"problems":[],"connections":[]}"#.utf8)
        let server = try await InspectorServer.start(.init(host: "127.0.0.1", port: 0, token: "T0K"), feed: feed, report: report)
        #expect(server.url == "http://127.0.0.1:\(server.port)/?token=T0K")
        let pool = HTTPConnectionPool(host: "127.0.0.1", port: server.port)
        func get(_ target: String) async throws -> HTTPResponse {
            let uri = target == "/" || target.hasSuffix(".js") ? target : target + (target.contains("?") ? "&" : "?") + "token=T0K"
            return try await pool.send(head: HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: ["Host": "127.0.0.1:\(server.port)"]), body: [])
        }
        do {
            let page = try await get("/")
            #expect(page.status == .ok && page.headers.first(name: "Content-Type") == "text/html; charset=utf-8")
            #expect(String(decoding: page.body, as: UTF8.self).contains(#"<script src="/inspector.js">"#))
            #expect(try await get("/inspector.js").headers.first(name: "Content-Type") == "text/javascript; charset=utf-8")
            let match = try await get("/match?filter=event%3Dchat")
            #expect(String(decoding: match.body, as: UTF8.self) == #"{"seqs":[2,5]}"#)
            let wrong = try await get("/match?filter=colour%3Dred")
            #expect(wrong.status == .ok && String(decoding: wrong.body, as: UTF8.self).contains("unknown key colour"))
            #expect(try await get("/export?filter=colour%3Dred").status == .badRequest)
            let export = try await get("/export?conn=c1&filter=event%3Dchat")
            #expect(String(decoding: export.body, as: UTF8.self) == [Self.lines[0], Self.lines[1], Self.lines[5]].map { $0 + "\n" }.joined())
            #expect(export.headers.first(name: "Content-Disposition")?.contains("c1-selection.jsonl") == true)
            #expect(try await get("/report").body == report)
            #expect(try await get("/nothing").status == .notFound)

            let (socket, _, run) = try await WebSocketClient.connect(
                host: "127.0.0.1", port: server.port, uri: "/live?token=T0K", headers: ["Origin": "http://127.0.0.1:\(server.port)"], maxMessageSize: 1 << 20
            )
            let running = Task { await run() }
            var messages = socket.messages.makeAsyncIterator()
            guard case .text(let hello) = await messages.next() else { Issue.record("no hello"); return }
            #expect(hello == #"{"inspector":"hello","source":"test.jsonl","capacity":100,"dropped":0,"held":6}"#)
            for line in Self.lines {
                guard case .text(let text) = await messages.next() else { Issue.record("no record"); return }
                #expect(text == line)
            }
            let late = #"{"seq":7,"ts":"2026-11-27T10:33:42.000000Z","kind":"close","conn":"c2","by":"server","reason":"gone"}"#
            feed.add(try CaptureRecord(jsonLine: late), line: late)
            guard case .text(let live) = await messages.next() else { Issue.record("no live record"); return }
            #expect(live == late)
            socket.close()
            await running.value
        } catch {
            pool.close()
            await server.stop()
            throw error
        }
        pool.close()
        await server.stop()
    }

    @Test("Access: Host must name this server, Origin (when said) must be its own page, and all but the page needs the token")
    func access() {
        let access = InspectorAccess(token: "secret", boundHost: "127.0.0.1", port: 8081, allowRemote: false)
        func status(_ uri: String, _ headers: [(String, String)]) -> Int? {
            access.refusal(for: HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: HTTPHeaders(headers))).map { Int($0.status.code) }
        }
        for host in ["127.0.0.1:8081", "localhost:8081", "LOCALHOST:8081", "[::1]:8081"] {
            #expect(status("/", [("Host", host)]) == nil, "\(host)")
            #expect(status("/export?token=secret", [("Host", host)]) == nil, "\(host)")
        }
        // DNS rebinding: the attacker's name, or the right name on another port.
        for host in ["evil.example:8081", "127.0.0.1:9999", "127.0.0.1", "localhost.evil.example:8081"] {
            #expect(status("/", [("Host", host)]) == 421, "\(host)")
            #expect(status("/export?token=secret", [("Host", host)]) == 421, "\(host)")
        }
        #expect(status("/export?token=secret", []) == 400, "no Host")
        #expect(status("/export?token=secret", [("Host", "127.0.0.1:8081"), ("Host", "127.0.0.1:8081")]) == 400)
        // The token.
        for uri in ["/export", "/export?token=", "/export?token=secreT", "/export?token=secrets", "/live", "/match?filter=&tok=secret", "/report?x=token=secret"] {
            #expect(status(uri, [("Host", "127.0.0.1:8081")]) == 403, "\(uri)")
        }
        #expect(status("/match?filter=a&token=secret", [("Host", "127.0.0.1:8081")]) == nil)
        #expect(status("/inspector.js", [("Host", "127.0.0.1:8081")]) == nil)
        // Origin: absent (curl) or the page's own; any other page is refused, token or not.
        #expect(status("/live?token=secret", [("Host", "127.0.0.1:8081"), ("Origin", "http://127.0.0.1:8081")]) == nil)
        #expect(status("/live?token=secret", [("Host", "localhost:8081"), ("Origin", "http://localhost:8081")]) == nil)
        for origin in ["http://evil.example", "http://127.0.0.1:9999", "null", "http://localhost:8081", "https://127.0.0.1:8081"] {
            #expect(status("/live?token=secret", [("Host", "127.0.0.1:8081"), ("Origin", origin)]) == 403, "\(origin)")
        }
        // Serving other machines: any Host (the machine's name or address), still the token and the Origin.
        let remote = InspectorAccess(token: "secret", boundHost: "0.0.0.0", port: 8081, allowRemote: true)
        let head = { (uri: String, origin: String?) in
            HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: HTTPHeaders([("Host", "devbox.lan:8081")] + (origin.map { [("Origin", $0)] } ?? [])))
        }
        #expect(remote.refusal(for: head("/export?token=secret", nil)) == nil)
        #expect(remote.refusal(for: head("/export", nil))?.status == .forbidden)
        #expect(remote.refusal(for: head("/live?token=secret", "http://evil.example"))?.status == .forbidden)
        #expect(remote.refusal(for: head("/live?token=secret", "http://devbox.lan:8081")) == nil)
        // A new token each run: 32 hex digits.
        let tokens = Set((0..<50).map { _ in InspectorAccess.newToken() })
        #expect(tokens.count == 50 && tokens.allSatisfy { $0.count == 32 && $0.allSatisfy(\.isHexDigit) })
    }

    @Test("On loopback: a rebinding Host, a foreign Origin and a missing token get nothing, not even the live feed")
    func accessOnTheWire() async throws {
        let feed = try Self.feed()
        let server = try await InspectorServer.start(.init(host: "127.0.0.1", port: 0, token: "T0K"), feed: feed)
        let pool = HTTPConnectionPool(host: "127.0.0.1", port: server.port)
        func get(_ uri: String, host: String) async throws -> HTTPResponse {
            try await pool.send(head: HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: ["Host": host]), body: [])
        }
        let own = "127.0.0.1:\(server.port)"
        do {
            let rebound = try await get("/export?token=T0K", host: "evil.example:\(server.port)")
            #expect(rebound.status == .misdirectedRequest && !String(decoding: rebound.body, as: UTF8.self).contains("chat"))
            #expect(try await get("/export", host: own).status == .forbidden)
            #expect(try await get("/export?token=T0K", host: own).status == .ok)
            await #expect(throws: (any Error).self) {
                _ = try await WebSocketClient.connect(
                    host: "127.0.0.1", port: server.port, uri: "/live?token=T0K", headers: ["Origin": "http://evil.example"], maxMessageSize: 1 << 20
                )
            }
            await #expect(throws: (any Error).self) {
                _ = try await WebSocketClient.connect(host: "127.0.0.1", port: server.port, uri: "/live", headers: [:], maxMessageSize: 1 << 20)
            }
        } catch {
            pool.close()
            await server.stop()
            throw error
        }
        pool.close()
        await server.stop()
    }

    @Test("Loopback only: 127/8, ::1 and IPv4 loopback written as IPv6 are admitted, other addresses are not")
    func loopbackOnly() throws {
        let admission = HTTPServer.Admission.loopbackOnly(refusal: "no")
        #expect(admission.admits(try SocketAddress(ipAddress: "127.0.0.1", port: 1)))
        #expect(admission.admits(try SocketAddress(ipAddress: "127.9.8.7", port: 1)))
        #expect(admission.admits(try SocketAddress(ipAddress: "::1", port: 1)))
        #expect(admission.admits(try SocketAddress(ipAddress: "::ffff:127.0.0.1", port: 1)))
        #expect(!admission.admits(try SocketAddress(ipAddress: "10.0.0.7", port: 1)))
        #expect(!admission.admits(try SocketAddress(ipAddress: "fe80::1", port: 1)))
        #expect(!admission.admits(nil))
    }
}
