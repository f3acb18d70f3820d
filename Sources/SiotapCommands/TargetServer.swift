import SocketIOTransport
import NIOHTTP1
import SocketIOServer

/// Where replay and bench send their traffic: `--target`, or the built-in server started on a
/// free loopback port (and stopped with ``stop()``).
struct TargetServer {
    let host: String
    let port: Int
    /// The Engine.IO path the target's URL names, if any.
    let path: String?
    /// TLS to an `https://` target.
    let tls: TLSClientSettings?
    private let builtIn: SocketIOServer?

    /// `tls`: given for an `https://` target (which only replay speaks so far).
    init(
        target: UpstreamURL?, tls: TLSClientSettings? = nil, configuration: SocketIOServer.Configuration = .init(), install: (SocketIOServer) -> Void
    ) async throws {
        self.tls = tls
        if let url = target {
            if tls == nil { try url.requirePlain("--target") }
            (host, port, path, builtIn) = (url.host, url.port, url.path, nil)
        } else {
            let server = SocketIOServer(configuration: configuration)
            install(server)
            (host, port, path, builtIn) = ("127.0.0.1", try await server.start(host: "127.0.0.1", port: 0), nil, server)
        }
    }

    /// Whether anything answers there at all: told apart from a server that answers differently.
    func reachable() async throws(HTTPClientError) {
        try await UpstreamProbe.answers(host: host, port: port, tls: tls, path: path)
    }

    func stop() async { await builtIn?.shutdown() }
}

/// Whether a server answers at all: a connection, TLS if asked, and an HTTP answer of any status.
enum UpstreamProbe {
    static func answers(host: String, port: Int, tls: TLSClientSettings?, path: String?) async throws(HTTPClientError) {
        let pool = HTTPConnectionPool(host: host, port: port, maxIdle: 0, tls: tls)
        defer { pool.close() }
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path ?? "/socket.io/")
        head.headers.add(name: "Host", value: host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
        do { _ = try await pool.send(head: head, body: []) } catch where error.code == .unreachable || error.code == .tls || error.code == .closed {
            throw error
        } catch {
            // Answered, whatever it said.
        }
    }
}
