import LiveIntervention
import NIOConcurrencyHelpers
import NIOHTTP1
import NIOWebSocket
import SocketIOProtocol
import SocketIOTransport
import TrafficCapture

/// The web inspector: the page (HTML, CSS and JavaScript shipped with siotap, nothing fetched from
/// elsewhere), the records live over a WebSocket (`/live`), and the selection as a capture
/// (`/export`). Serves this machine only unless told otherwise.
public final class InspectorServer: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        public var allowRemote: Bool
        /// The run's token (a new random one unless given: tests give theirs).
        public var token: String

        public init(host: String = "127.0.0.1", port: Int = 8081, allowRemote: Bool = false, token: String = InspectorAccess.newToken()) {
            self.host = host
            self.port = port
            self.allowRemote = allowRemote
            self.token = token
        }
    }

    /// Why the inspector cannot start.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    private let http: HTTPServer
    private let serving: Task<Void, Never>
    /// The page's address with the run's token, `http://host:port/?token=…`.
    public let url: String

    private init(http: HTTPServer, serving: Task<Void, Never>, url: String) {
        self.http = http
        self.serving = serving
        self.url = url
    }

    /// Binds and serves `feed` in the background; `report` is a replay's JSON report of the same
    /// capture (`siotap replay --report`), shown beside its records.
    /// `control`: the live conns the page and the API may act on (`siotap proxy`); without it
    /// the API's routes answer 404.
    public static func start(
        _ configuration: Configuration, feed: InspectorFeed, report: [UInt8]? = nil, control: (any LiveControl)? = nil
    ) async throws -> InspectorServer {
        let delegate = InspectorDelegate(feed: feed, assets: InspectorAssets.files, report: report, api: control.map(InspectorAPI.init))
        let loopbackOnly = HTTPServer.Admission.loopbackOnly(
            refusal: "siotap's inspector serves this machine only; start it with --ui-allow-remote to serve others\n"
        )
        let http = try await HTTPServer.bind(
            .init(host: configuration.host, port: configuration.port, admits: configuration.allowRemote ? nil : loopbackOnly),
            delegate: delegate
        )
        // The port is known once bound (0 asks the system for one), and Host names it.
        delegate.access.withLockedValue {
            $0 = InspectorAccess(token: configuration.token, boundHost: configuration.host, port: http.port, allowRemote: configuration.allowRemote)
        }
        let serving = Task { await http.run(delegate: delegate) }
        let host = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
        return InspectorServer(http: http, serving: serving, url: "http://\(host):\(http.port)/?token=\(configuration.token)")
    }

    public var port: Int { http.port }

    public func stop() async {
        await http.close()
        serving.cancel()
    }
}

/// The page's files, compiled into the binary (SwiftPM's `embedInCode`).
enum InspectorAssets {
    struct File: Sendable {
        var contentType: String
        var body: [UInt8]
    }

    static let files: [String: File] = [
        "index.html": File(contentType: "text/html; charset=utf-8", body: PackageResources.index_html),
        "inspector.js": File(contentType: "text/javascript; charset=utf-8", body: PackageResources.inspector_js),
        "inspector.css": File(contentType: "text/css; charset=utf-8", body: PackageResources.inspector_css),
    ]
}

struct InspectorDelegate: HTTPServerDelegate {
    let feed: InspectorFeed
    let assets: [String: InspectorAssets.File]
    let report: [UInt8]?
    let api: InspectorAPI?
    /// Set once the server is bound; until then everything is refused.
    let access = NIOLockedValueBox<InspectorAccess?>(nil)

    init(feed: InspectorFeed, assets: [String: InspectorAssets.File], report: [UInt8]?, api: InspectorAPI? = nil) {
        self.feed = feed
        self.assets = assets
        self.report = report
        self.api = api
    }

    private func refusal(for head: HTTPRequestHead) -> InspectorAccess.Refusal? {
        guard let access = access.withLockedValue({ $0 }) else { return .init(status: .serviceUnavailable, reason: "starting") }
        return access.refusal(for: head)
    }

    func handle(_ request: HTTPRequest) async -> HTTPResponse {
        if let refusal = refusal(for: request.head) {
            return HTTPResponse(status: refusal.status, contentType: "text/plain; charset=utf-8", body: refusal.reason + "\n")
        }
        if request.path == "/api" {
            // What the page asks first: whether live conns can be acted on here (siotap proxy) or
            // the inspector only shows records (view, import, sniff, demo).
            return InspectorAPI.json(.object(JSONObject([.init(key: JSONString("live"), value: .bool(api != nil))])))
        }
        if request.path.hasPrefix("/api/") {
            guard let api else {
                return InspectorAPI.failure(.notFound, code: "not_found", message: "only siotap proxy acts on live conns; this inspector shows records")
            }
            return await api.handle(request)
        }
        guard request.method == .GET || request.method == .HEAD else {
            return HTTPResponse(status: .methodNotAllowed, contentType: "text/plain", body: "GET only\n")
        }
        let query = Dictionary(QueryString.pairs(request.query).map { ($0.0, $0.1) }, uniquingKeysWith: { first, _ in first })
        switch request.path {
        case "/":
            return file("index.html")
        case "/inspector.js", "/inspector.css":
            return file(String(request.path.dropFirst()))
        case "/report":
            // `null` when there is none: the page asks every time.
            return HTTPResponse(status: .ok, headers: ["Content-Type": "application/json"], body: report ?? Array("null".utf8))
        case "/export", "/match":
            let filter: CaptureFilter
            do {
                filter = try CaptureFilter(query["filter"] ?? "")
            } catch {
                // The page asks /match as the user types: its answer says what is wrong with the
                // filter (a 4xx would also be logged as a failed load by the browser).
                let status: HTTPResponseStatus = request.path == "/match" ? .ok : .badRequest
                return HTTPResponse(status: status, contentType: "application/json", body: #"{"error":"\#(JSONString.escape(error.description))"}"#)
            }
            let conn = query["conn"].flatMap { $0.isEmpty ? nil : $0 }
            if request.path == "/match" {
                let seqs = feed.select(conn: conn, filter: filter).map { String($0.record.seq) }
                return HTTPResponse(status: .ok, contentType: "application/json", body: #"{"seqs":[\#(seqs.joined(separator: ","))]}"#)
            }
            let lines = feed.select(conn: conn, filter: filter, forExport: true).map { $0.line + "\n" }.joined()
            var response = HTTPResponse(status: .ok, contentType: "application/x-ndjson", body: lines)
            response.headers.add(name: "Content-Disposition", value: #"attachment; filename="\#(conn ?? "siotap")-selection.jsonl""#)
            return response
        default:
            return HTTPResponse(status: .notFound, contentType: "text/plain", body: "not found\n")
        }
    }

    private func file(_ name: String) -> HTTPResponse {
        guard let file = assets[name] else { return HTTPResponse(status: .notFound, contentType: "text/plain", body: "not found\n") }
        var response = HTTPResponse(status: .ok, headers: ["Content-Type": file.contentType, "Cache-Control": "no-cache"], body: file.body)
        response.headers.add(name: "X-Content-Type-Options", value: "nosniff")
        // The token is in the page's address: it must not travel on as a Referer, and no other
        // site may frame the page.
        response.headers.add(name: "Referrer-Policy", value: "no-referrer")
        response.headers.add(name: "X-Frame-Options", value: "DENY")
        return response
    }

    /// Lines a page may fall behind the live feed, beyond the held records sent when it opened.
    static let queueAllowance = 20_000

    /// `/live` for the page only: a refused upgrade is answered by ``handle(_:)``, which says why.
    func shouldUpgrade(_ head: HTTPRequestHead) async -> HTTPHeaders? {
        head.uri.split(separator: "?").first == "/live" && refusal(for: head) == nil ? [:] : nil
    }

    /// The page's live feed: a hello (the source, how many records are held and how many are
    /// only in the file), the held records' lines, then each new line as it comes.
    func handleWebSocket(_ connection: WebSocketConnection, head: HTTPRequestHead) async {
        let source = JSONString.escape(feed.source)
        let id = feed.watch(
            start: { held, dropped in
                connection.send(.text(#"{"inspector":"hello","source":"\#(source)","capacity":\#(feed.capacity),"dropped":\#(dropped),"held":\#(held.count)}"#))
                for entry in held { connection.send(.text(entry.line)) }
            },
            then: { line in
                // A page that stopped reading (a frozen tab) is let go rather than queued for without
                // end: it reconnects when it can, and gets the held records again.
                guard connection.queuedMessages < feed.capacity + Self.queueAllowance else {
                    connection.close(code: .policyViolation)
                    return
                }
                connection.send(.text(line))
            }
        )
        defer { feed.unwatch(id) }
        // The page sends nothing that matters; this ends when it goes.
        for await _ in connection.messages {}
    }
}
