import NIOCore
import NIOHTTP1
import Synchronization
public import SocketIOProtocol
public import SocketIOTransport

/// `siotap doctor`: an active probe of a Socket.IO server and of whatever sits in front of it.
/// Each check tries one thing the way a client does and says pass, warn or fail, with the fix.
/// Every step has a deadline; nothing waits on a server that does not answer.
public struct ServerCheckup: Sendable {
    public struct Check: Sendable, Hashable {
        public enum Status: String, Sendable, Hashable { case pass, warn, fail }
        public var name: String
        public var status: Status
        public var detail: String
        public var fix: String?
    }

    public struct Options: Sendable {
        /// The Engine.IO path, with its trailing `/`.
        public var path = "/socket.io/"
        /// A page's origin, for the CORS check (none: not checked).
        public var origin: String?
        /// The CONNECT's auth payload (`{"token": …}`), for the namespaces' checks.
        public var auth: JSONValue?
        public var namespaces: [String] = ["/"]
        /// Skips holding an idle connection past pingInterval.
        public var quick = false
        /// Requests of one session sent on new connections, for the sticky-session check.
        public var stickyRequests = 5
        public var tls: TLSClientSettings?
        /// A step's deadline.
        public var timeoutSeconds = 5.0

        public init() {}
    }

    let host: String
    let port: Int
    let options: Options

    public init(host: String, port: Int, options: Options) {
        self.host = host
        self.port = port
        self.options = options
    }

    /// What the server's open packet said.
    struct Handshake {
        var sid: String
        var upgrades: [String]
        var pingInterval: Double
        var pingTimeout: Double
        var maxPayload: Int?
    }

    /// Runs every check, in order; `progress` hears of each as it ends.
    public func run(progress: @Sendable (Check) -> Void = { _ in }) async -> [Check] {
        var checks: [Check] = []
        func add(_ check: Check) {
            checks.append(check)
            progress(check)
        }
        let handshake = await pollingHandshake(add)
        await engineIO3(add)
        if let handshake {
            add(parameters(handshake))
            if let origin = options.origin { await cors(add, origin: origin) }
            await sticky(add)
        }
        await webSocketDirect(add)
        if handshake != nil { await upgradeAfterPolling(add) }
        await connects(add, pingInterval: handshake?.pingInterval)
        return checks
    }

    // MARK: Polling

    /// What a check reads of an answer: a handshake or a long-poll is small, and a server (or
    /// whatever answers in its place) is not trusted with more memory than this.
    static let largestAnswer = 1 << 20

    private var pool: HTTPConnectionPool { HTTPConnectionPool(host: host, port: port, maxIdle: 0, tls: options.tls) }

    private func get(_ query: String, origin: String? = nil) async throws -> HTTPResponse {
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: options.path + "?" + query)
        if let origin { head.headers.add(name: "Origin", value: origin) }
        let (pool, request) = (self.pool, head)
        return try await deadline { try await pool.send(head: request, body: [], maxResponseSize: Self.largestAnswer) }
    }

    private func post(_ query: String, body: String) async throws -> HTTPResponse {
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: options.path + "?" + query)
        head.headers.add(name: "Content-Type", value: "text/plain;charset=UTF-8")
        head.headers.add(name: "Content-Length", value: String(body.utf8.count))
        let (pool, request) = (self.pool, head)
        return try await deadline { try await pool.send(head: request, body: Array(body.utf8), maxResponseSize: Self.largestAnswer) }
    }

    private func pollingHandshake(_ add: (Check) -> Void) async -> Handshake? {
        let name = "polling handshake (Engine.IO 4)"
        do {
            let response = try await get("EIO=4&transport=polling")
            let body = String(decoding: response.body, as: UTF8.self)
            guard response.status == .ok, let handshake = Self.openPacket(body) else {
                add(Check(name: name, status: .fail, detail: "answered \(response.status.code): \(Self.excerpt(body))", fix: Self.fix(forAnswer: body, status: response.status.code)))
                return nil
            }
            add(Check(name: name, status: .pass, detail: "sid \(handshake.sid), upgrades \(handshake.upgrades)"))
            return handshake
        } catch {
            add(Check(name: name, status: .fail, detail: Self.describe(error), fix: "is the server up, and is \(options.path) its Engine.IO path (give another in the URL: http://host:port/app/socket.io/)?"))
            return nil
        }
    }

    private func engineIO3(_ add: (Check) -> Void) async {
        let name = "Engine.IO 3 clients (socket.io-client 2.x)"
        guard let response = try? await get("EIO=3&transport=polling") else { return }
        let body = String(decoding: response.body, as: UTF8.self)
        if response.status == .ok {
            add(Check(name: name, status: .pass, detail: "accepted"))
        } else {
            add(Check(
                name: name, status: .pass, detail: "refused (\(response.status.code): \(Self.excerpt(body))): socket.io-client 2.x cannot connect",
                fix: "only if you have such clients: allowEIO3: true on a Node server, or upgrade them"
            ))
        }
    }

    private func parameters(_ handshake: Handshake) -> Check {
        let said = "pingInterval \(Self.seconds(handshake.pingInterval)), pingTimeout \(Self.seconds(handshake.pingTimeout))"
            + (handshake.maxPayload.map { ", maxPayload \($0) bytes" } ?? "")
        guard handshake.upgrades.contains("websocket") else {
            return Check(name: "server parameters", status: .warn, detail: said + "; WebSocket not offered: every message costs an HTTP request",
                         fix: "offer WebSocket (the server's transports option)")
        }
        return Check(name: "server parameters", status: .pass, detail: said + "; WebSocket offered")
    }

    private func cors(_ add: (Check) -> Void, origin: String) async {
        let name = "CORS for \(origin)"
        let response: HTTPResponse
        do { response = try await get("EIO=4&transport=polling", origin: origin) } catch {
            add(Check(name: name, status: .fail, detail: Self.describe(error), fix: nil))
            return
        }
        let fix = "allow the origin on the server: cors: { origin: \"\(origin)\" } in Node, cors_allowed_origins in python-socketio"
        guard response.status == .ok else {
            add(Check(name: name, status: .fail, detail: "the handshake from this origin was answered \(response.status.code): \(Self.excerpt(String(decoding: response.body, as: UTF8.self)))", fix: fix))
            return
        }
        let headers = response.headers
        let allowed = headers.first(name: "Access-Control-Allow-Origin")
        switch allowed {
        case origin?:
            add(Check(name: name, status: .pass, detail: "Access-Control-Allow-Origin: \(origin)"))
        case "*"? where headers.first(name: "Access-Control-Allow-Credentials") != "true":
            add(Check(name: name, status: .pass, detail: "Access-Control-Allow-Origin: * (a page sending cookies or credentials is refused by the browser)"))
        default:
            add(Check(
                name: name, status: .fail,
                detail: allowed.map { "Access-Control-Allow-Origin: \($0), not this origin" } ?? "no Access-Control-Allow-Origin in the answer: a browser refuses it", fix: fix
            ))
        }
    }

    private func sticky(_ add: (Check) -> Void) async {
        let name = "sticky sessions (\(options.stickyRequests) requests of one session, each on a new connection)"
        guard let response = try? await get("EIO=4&transport=polling"), let handshake = Self.openPacket(String(decoding: response.body, as: UTF8.self))
        else { return }
        let query = "EIO=4&transport=polling&sid=\(handshake.sid)"
        defer { Task { [self] in _ = try? await post(query, body: "1") } }
        for attempt in 1...max(1, options.stickyRequests) {
            // A pong is a request any server takes from a client at any time.
            let answer: HTTPResponse
            do { answer = try await post(query, body: "3") } catch {
                add(Check(name: name, status: .fail, detail: "request \(attempt): \(Self.describe(error))", fix: nil))
                return
            }
            let body = String(decoding: answer.body, as: UTF8.self)
            guard answer.status == .ok else {
                add(Check(
                    name: name, status: .fail, detail: "request \(attempt) answered \(answer.status.code): \(Self.excerpt(body))",
                    fix: "the requests of one session must reach one server: sticky sessions on the load balancer (nginx ip_hash, a cookie)"
                ))
                return
            }
        }
        add(Check(name: name, status: .pass, detail: "every request reached a server that knew the session"))
    }

    // MARK: WebSocket

    private func webSocketDirect(_ add: (Check) -> Void) async {
        let name = "WebSocket, directly"
        do {
            let socket = try await WebSocketSession.open(host: host, port: port, uri: options.path + "?EIO=4&transport=websocket", tls: options.tls, timeout: options.timeoutSeconds)
            defer { socket.close() }
            guard let open = await socket.next(timeout: options.timeoutSeconds), open.hasPrefix("0{") else {
                add(Check(name: name, status: .fail, detail: "upgraded, but no open packet came", fix: nil))
                return
            }
            add(Check(name: name, status: .pass, detail: "101, then the open packet"))
        } catch {
            add(webSocketFailure(name, error))
        }
    }

    private func upgradeAfterPolling(_ add: (Check) -> Void) async {
        let name = "WebSocket upgrade after polling"
        guard let response = try? await get("EIO=4&transport=polling"), let handshake = Self.openPacket(String(decoding: response.body, as: UTF8.self))
        else { return }
        do {
            let socket = try await WebSocketSession.open(
                host: host, port: port, uri: options.path + "?EIO=4&transport=websocket&sid=\(handshake.sid)", tls: options.tls, timeout: options.timeoutSeconds
            )
            defer { socket.close() }
            socket.send("2probe")
            guard await socket.next(timeout: options.timeoutSeconds) == "3probe" else {
                add(Check(name: name, status: .fail, detail: "no 3probe answered the 2probe", fix: nil))
                return
            }
            socket.send("5")
            add(Check(name: name, status: .pass, detail: "101, probe answered, upgraded"))
        } catch {
            add(webSocketFailure(name, error))
        }
    }

    private func webSocketFailure(_ name: String, _ error: any Error) -> Check {
        guard let failure = error as? HTTPClientError else { return Check(name: name, status: .fail, detail: "\(error)", fix: nil) }
        let body = failure.detail
        let lost = body.contains(#""code":3"#) || body.lowercased().contains("invalid websocket upgrade") || body.lowercased().contains("invalid transport")
            || body.lowercased().contains("upgrade hdr")
        return Check(
            name: name, status: .fail, detail: failure.detail,
            fix: lost
                ? "the server saw no Upgrade header: whatever is in front of it drops it (nginx: proxy_http_version 1.1, proxy_set_header Upgrade $http_upgrade, proxy_set_header Connection \"upgrade\")"
                : "let WebSockets through whatever is in front of the server, or offer them (transports)"
        )
    }

    // MARK: Namespaces, and an idle connection

    private func connects(_ add: (Check) -> Void, pingInterval: Double?) async {
        let auth = options.auth?.jsonText ?? ""
        let packets = options.namespaces.map { nsp in (nsp, "40" + (nsp == "/" ? "" : nsp + ",") + auth) }
        let answers: [String?]
        var over = "WebSocket"
        if let socket = try? await WebSocketSession.open(host: host, port: port, uri: options.path + "?EIO=4&transport=websocket", tls: options.tls, timeout: options.timeoutSeconds),
           let open = await socket.next(timeout: options.timeoutSeconds), open.hasPrefix("0")
        {
            var gathered: [String?] = []
            for (_, packet) in packets {
                socket.send(packet)
                var answer: String?
                while let message = await socket.next(timeout: options.timeoutSeconds) {
                    if message == "2" { socket.send("3"); continue }
                    if message.hasPrefix("40") || message.hasPrefix("44") { answer = message; break }
                }
                gathered.append(answer)
            }
            socket.close()
            answers = gathered
        } else {
            // No WebSocket (said by its checks): the namespaces are tried over long-polling, as a
            // client that falls back would.
            over = "long-polling"
            answers = await pollingConnects(packets.map(\.1))
        }
        for ((nsp, _), answer) in zip(packets, answers) {
            let name = "CONNECT to \(nsp)" + (options.auth == nil ? " (no auth)" : "") + (over == "WebSocket" ? "" : " over \(over)")
            guard let answer else {
                add(Check(name: name, status: .fail, detail: "no answer to the CONNECT", fix: nil))
                continue
            }
            if answer.hasPrefix("40") {
                add(Check(name: name, status: .pass, detail: "accepted"))
            } else {
                let text = Self.connectErrorMessage(answer)
                add(Check(
                    name: name, status: options.auth == nil && nsp == "/" ? .warn : .fail, detail: "refused: \(text)",
                    fix: text.lowercased().contains("namespace") || text == "Unable to connect"
                        ? "the server has no namespace \(nsp)" : options.auth == nil ? "give the credentials your client sends (--token, --auth)" : "the server's middleware says why"
                ))
            }
        }
        guard !options.quick, let pingInterval, over == "WebSocket" else { return }
        await idleConnection(add, pingInterval: pingInterval)
    }

    /// Each CONNECT in a POST of a polling session, its answer from the long-polls that follow.
    private func pollingConnects(_ packets: [String]) async -> [String?] {
        guard let response = try? await get("EIO=4&transport=polling"),
              let handshake = Self.openPacket(String(decoding: response.body, as: UTF8.self))
        else { return packets.map { _ in nil } }
        let query = "EIO=4&transport=polling&sid=\(handshake.sid)"
        defer { Task { [self] in _ = try? await post(query, body: "1") } }
        var answers: [String?] = []
        for packet in packets {
            guard (try? await post(query, body: packet))?.status == .ok else {
                answers.append(nil)
                continue
            }
            var answer: String?
            polling: for _ in 0..<3 {
                guard let poll = try? await get(query) else { break }
                for message in String(decoding: poll.body, as: UTF8.self).split(separator: "\u{1e}").map(String.init) {
                    if message == "2" { _ = try? await post(query, body: "3") }
                    if message.hasPrefix("40") || message.hasPrefix("44") {
                        answer = message
                        break polling
                    }
                }
            }
            answers.append(answer)
        }
        return answers
    }

    /// A WebSocket of its own, held without traffic but the heartbeat: its namespaces' fate
    /// (a refused CONNECT may end a session) says nothing of what sits in front of the server.
    private func idleConnection(_ add: (Check) -> Void, pingInterval: Double) async {
        let name = "an idle connection held past pingInterval (\(Self.seconds(pingInterval)))"
        guard let socket = try? await WebSocketSession.open(host: host, port: port, uri: options.path + "?EIO=4&transport=websocket", tls: options.tls, timeout: options.timeoutSeconds),
              let open = await socket.next(timeout: options.timeoutSeconds), open.hasPrefix("0")
        else { return }
        defer { socket.close() }
        let started = ContinuousClock.now
        while true {
            let message = await socket.next(timeout: pingInterval + 5)
            let waited = Double((ContinuousClock.now - started).components.seconds) + Double((ContinuousClock.now - started).components.attoseconds) / 1e18
            guard let message else {
                if socket.isClosed {
                    add(Check(
                        name: name, status: .fail, detail: "closed after \(Self.seconds(waited)) without traffic, before the server's first ping",
                        fix: "something in front of the server closes idle connections: raise its idle timeout (nginx proxy_read_timeout) above pingInterval + pingTimeout"
                    ))
                } else {
                    add(Check(name: name, status: .warn, detail: "no ping came within pingInterval + 5 s", fix: nil))
                }
                return
            }
            if message == "2" {
                socket.send("3")
                add(Check(name: name, status: .pass, detail: "the server's ping came after \(Self.seconds(waited)); nothing closed the connection"))
                return
            }
        }
    }

    // MARK: Words and shapes

    static func openPacket(_ body: String) -> Handshake? {
        // Engine.IO 4's first packet; Engine.IO 3 frames it with its length ("96:0{…").
        var text = Substring(body)
        if let colon = text.firstIndex(of: ":"), text[..<colon].allSatisfy(\.isNumber) { text = text[text.index(after: colon)...] }
        guard text.hasPrefix("0"), let end = text.firstIndex(of: "\u{1e}") ?? Optional(text.endIndex),
              let json = try? JSONValue.parse(String(text[text.index(after: text.startIndex)..<end])), let sid = json["sid"]?.stringValue
        else { return nil }
        return Handshake(
            sid: sid, upgrades: json["upgrades"]?.arrayValue?.compactMap(\.stringValue) ?? [],
            pingInterval: (json["pingInterval"]?.numberValue?.doubleValue ?? 25000) / 1000, pingTimeout: (json["pingTimeout"]?.numberValue?.doubleValue ?? 20000) / 1000,
            maxPayload: json["maxPayload"]?.numberValue?.intValue
        )
    }

    static func connectErrorMessage(_ packet: String) -> String {
        var text = Substring(packet.dropFirst(2))
        if text.hasPrefix("/"), let comma = text.firstIndex(of: ",") { text = text[text.index(after: comma)...] }
        guard let json = try? JSONValue.parse(String(text)) else { return String(text) }
        return json.stringValue ?? json["message"]?.stringValue ?? json.jsonText
    }

    static func fix(forAnswer body: String, status: UInt) -> String? {
        let lowered = body.lowercased()
        if lowered.contains("not an accepted origin") { return "allow the page's origin on the server (cors_allowed_origins)" }
        if lowered.contains("unsupported") { return "the server speaks another Engine.IO version" }
        if status == 404 { return "nothing at this path: give the server's Engine.IO path in the URL (http://host:port/app/socket.io/)" }
        return nil
    }

    static func describe(_ error: any Error) -> String {
        (error as? HTTPClientError)?.description ?? "\(error)"
    }

    static func excerpt(_ text: String) -> String {
        text.count > 160 ? String(text.prefix(160)) + "…" : text
    }

    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value)) s" : "\((value * 10).rounded() / 10) s"
    }

    /// `work`, or a failure once the step's deadline passes.
    private func deadline<Result: Sendable>(_ work: @escaping @Sendable () async throws -> Result) async throws -> Result {
        let seconds = options.timeoutSeconds
        let request = "\(host):\(port)"
        return try await withThrowingTaskGroup(of: Result?.self) { group in
            group.addTask { try await work() }
            group.addTask {
                try? await Task.sleep(for: .seconds(seconds))
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let result = first else {
                throw HTTPClientError(.closed, request: request, detail: "no answer within \(Int(seconds)) s")
            }
            return result
        }
    }
}

/// A WebSocket for the checks: text messages one at a time, each with a deadline.
final class WebSocketSession: Sendable {
    private let connection: WebSocketConnection
    private let runner: Task<Void, Never>
    private let mailbox = Mailbox()

    private final class Mailbox: Sendable {
        let inbox = Mutex(Inbox())
    }

    /// Messages that came and nobody has taken, and the reader waiting for the next.
    private struct Inbox {
        var messages: [String] = []
        var closed = false
        var waiting: (id: Int, continuation: CheckedContinuation<String?, Never>)?
        var nextWaiter = 0
    }

    private init(connection: WebSocketConnection, run: @escaping @Sendable () async -> Void) {
        self.connection = connection
        runner = Task { await run() }
        Task { [mailbox] in
            let inbox = mailbox
            for await message in connection.messages {
                guard case .text(let text) = message else { continue }
                let waiter = inbox.inbox.withLock { inbox -> CheckedContinuation<String?, Never>? in
                    guard let waiting = inbox.waiting else {
                        if inbox.messages.count < 1024 { inbox.messages.append(text) }
                        return nil
                    }
                    inbox.waiting = nil
                    return waiting.continuation
                }
                waiter?.resume(returning: text)
            }
            let waiter = inbox.inbox.withLock { inbox -> CheckedContinuation<String?, Never>? in
                inbox.closed = true
                defer { inbox.waiting = nil }
                return inbox.waiting?.continuation
            }
            waiter?.resume(returning: nil)
        }
    }

    /// Connects, or fails once `timeout` seconds pass (a server that takes the connection and
    /// never answers the upgrade); a connection that comes after that is closed.
    static func open(host: String, port: Int, uri: String, tls: TLSClientSettings?, timeout: Double) async throws -> WebSocketSession {
        let outcome = FirstOutcome()
        return try await withCheckedThrowingContinuation { continuation in
            outcome.waiting(continuation)
            Task {
                do {
                    let (connection, _, run) = try await WebSocketClient.connect(host: host, port: port, uri: uri, headers: [:], maxMessageSize: 1 << 20, tls: tls)
                    let session = WebSocketSession(connection: connection, run: run)
                    if !outcome.settle(.success(session)) { session.close() }
                } catch {
                    _ = outcome.settle(.failure(error))
                }
            }
            Task {
                try? await Task.sleep(for: .seconds(timeout))
                _ = outcome.settle(.failure(HTTPClientError(.closed, request: "\(host):\(port)\(uri)", detail: "no answer to the upgrade within \(Int(timeout)) s")))
            }
        }
    }

    /// The first of the connection and the deadline to come; the other finds it settled.
    private final class FirstOutcome: Sendable {
        private let state = Mutex<(settled: Bool, waiting: CheckedContinuation<WebSocketSession, any Error>?)>((false, nil))

        func waiting(_ continuation: CheckedContinuation<WebSocketSession, any Error>) {
            state.withLock { $0.waiting = continuation }
        }

        func settle(_ result: Result<WebSocketSession, any Error>) -> Bool {
            guard let waiting = state.withLock({ state -> CheckedContinuation<WebSocketSession, any Error>? in
                guard !state.settled else { return nil }
                state.settled = true
                return state.waiting
            }) else { return false }
            waiting.resume(with: result)
            return true
        }
    }

    var isClosed: Bool { mailbox.inbox.withLock { $0.closed && $0.messages.isEmpty } }

    func send(_ text: String) {
        connection.send(.text(text))
    }

    /// The next text message, or nil once `timeout` seconds pass or the connection ends.
    func next(timeout: Double) async -> String? {
        let mailbox = self.mailbox
        return await withCheckedContinuation { continuation in
            let id = mailbox.inbox.withLock { inbox -> Int? in
                if !inbox.messages.isEmpty {
                    continuation.resume(returning: inbox.messages.removeFirst())
                    return nil
                }
                if inbox.closed {
                    continuation.resume(returning: nil)
                    return nil
                }
                inbox.nextWaiter += 1
                inbox.waiting = (inbox.nextWaiter, continuation)
                return inbox.nextWaiter
            }
            guard let id else { return }
            Task {
                try? await Task.sleep(for: .seconds(timeout))
                let expired = mailbox.inbox.withLock { inbox -> CheckedContinuation<String?, Never>? in
                    guard let waiting = inbox.waiting, waiting.id == id else { return nil }
                    inbox.waiting = nil
                    return waiting.continuation
                }
                expired?.resume(returning: nil)
            }
        }
    }

    func close() {
        connection.close()
        runner.cancel()
    }
}
