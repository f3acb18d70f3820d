import SocketIOProtocol

/// A browser's HAR export (Chrome's and Firefox's developer tools: "Save all as HAR") to the
/// events of ``SessionAssembler``: each entry's request and response, and a WebSocket entry's
/// messages from `_webSocketMessages` (`type` send/receive, `time` since 1970: in seconds from
/// Chromium's DevTools, in milliseconds from Playwright,
/// `opcode` 1 or 2, `data`: binary as base64). Entries are put in time order, whatever order the
/// file has them in. Pure: `HARSource` reads a file through it, an entry at a time.
public enum HARImport {
    public struct Failed: Error, CustomStringConvertible {
        public var description: String
    }

    /// What a HAR file held in memory holds, in time order, for ``SessionAssembler/take(_:on:)``.
    /// (A file is read as a stream, its entries one at a time: `HARSource`.)
    public static func events(_ bytes: [UInt8]) throws(Failed) -> [(HTTPConversation.Event, SessionAssembler.Flow)] {
        var scanner = HAREntryScanner()
        let entries: [[UInt8]]
        do throws(HAREntryScanner.Failed) {
            entries = try scanner.feed(bytes)
            try scanner.finish()
        } catch {
            throw Failed(description: error.description)
        }
        var timed: [(time: Double, order: Int, event: HTTPConversation.Event, flow: SessionAssembler.Flow)] = []
        for (index, entry) in entries.enumerated() {
            for (time, event, flow) in try events(ofEntry: entry, index: index) { timed.append((time, timed.count, event, flow)) }
        }
        timed.sort { ($0.time, $0.order) < ($1.time, $1.order) }
        return timed.map { ($0.event, $0.flow) }
    }

    /// A WebSocket message's `time` in seconds since 1970. DevTools writes seconds, Playwright
    /// milliseconds, and neither says which: told by magnitude (10^11 s is the year 5138, 10^11 ms
    /// is 1973).
    static func seconds(since1970 time: Double) -> Double {
        time > 1e11 ? time / 1000 : time
    }

    /// The events of one entry (the `index`-th, from 0), each with the time it goes by; an entry
    /// that is no request is none.
    public static func events(ofEntry bytes: [UInt8], index: Int) throws(Failed) -> [(Double, HTTPConversation.Event, SessionAssembler.Flow)] {
        let entry: JSONValue
        do { entry = try JSONValue.parse(bytes: bytes) } catch { throw Failed(description: "entry \(index + 1) is not JSON: \(error)") }
        var timed: [(Double, HTTPConversation.Event, SessionAssembler.Flow)] = []
        guard let request = entry["request"], let url = request["url"]?.stringValue, let method = request["method"]?.stringValue,
              let target = AbsoluteURI(url)
        else { return [] }
        let started = entry["startedDateTime"]?.stringValue.flatMap(RFC3339.parse) ?? 0
        let duration = (entry["time"]?.numberValue?.doubleValue ?? 0) / 1000
        let flow = SessionAssembler.Flow(client: nil, server: target.authority, scheme: target.tls ? "https" : "http", entry: index + 1)
        let requestHead = HTTPConversation.Head(method: method, target: target.originForm, status: 0, headers: headers(request["headers"]))
        let requestBody = Array((request["postData"]?["text"]?.stringValue ?? "").utf8)
        func add(_ time: Double, _ event: HTTPConversation.Event) { timed.append((time, event, flow)) }
        add(started, .request(requestHead, body: requestBody, time: started))
        guard let response = entry["response"], let status = response["status"]?.numberValue?.intValue, status > 0 else { return timed }
        let responseHead = HTTPConversation.Head(method: "", target: "", status: status, headers: headers(response["headers"]))
        let messages = entry["_webSocketMessages"]?.arrayValue ?? []
        if status == 101 || !messages.isEmpty {
            // The handshake is answered at once, and no later than the first message: Playwright's
            // entry times the whole socket, with the messages on a clock of their own.
            let firstMessage = messages.compactMap { $0["time"]?.numberValue?.doubleValue.map(Self.seconds(since1970:)) }.min()
            let opened = min(started + min(duration, 1), firstMessage ?? .infinity)
            add(opened, .response(HTTPConversation.Head(method: "", target: "", status: 101, headers: responseHead.headers), body: [], request: requestHead, time: opened))
            for message in messages {
                guard let data = message["data"]?.stringValue else { continue }
                let time = message["time"]?.numberValue?.doubleValue.map(Self.seconds(since1970:)) ?? opened
                let fromClient = message["type"]?.stringValue == "send"
                switch message["opcode"]?.numberValue?.intValue ?? 1 {
                case 1: add(time, .webSocket(.message(.text(data)), fromClient: fromClient, time: time))
                case 2: add(time, .webSocket(.message(.binary(Base64.decode(data) ?? Array(data.utf8))), fromClient: fromClient, time: time))
                case 8:
                    // A HAR has no TCP connection to end: its close frame ends it.
                    add(time, .webSocket(.close(code: nil), fromClient: fromClient, time: time))
                    add(time, .ended(fromClient: fromClient, reset: false, time: time))
                default: break
                }
            }
            return timed
        }
        var body = Array((response["content"]?["text"]?.stringValue ?? "").utf8)
        if response["content"]?["encoding"]?.stringValue == "base64", let decoded = Base64.decode(body) { body = decoded }
        add(started + duration, .response(responseHead, body: body, request: requestHead, time: started + duration))
        return timed
    }

    /// Headers as HAR lists them, without HTTP/2's pseudo-headers.
    private static func headers(_ list: JSONValue?) -> [(name: String, value: String)] {
        (list?.arrayValue ?? []).compactMap { header in
            guard let name = header["name"]?.stringValue, let value = header["value"]?.stringValue, !name.hasPrefix(":") else { return nil }
            return (name, value)
        }
    }
}
