import SocketIOServer

/// Where replay and bench send their traffic: `--target`, or the built-in server started on a
/// free loopback port (and stopped with ``stop()``).
struct TargetServer {
    let host: String
    let port: Int
    /// The Engine.IO path the target's URL names, if any.
    let path: String?
    private let builtIn: SocketIOServer?

    init(target: UpstreamURL?, configuration: SocketIOServer.Configuration = .init(), install: (SocketIOServer) -> Void) async throws {
        if let url = target {
            try url.requirePlain("--target")
            (host, port, path, builtIn) = (url.host, url.port, url.path, nil)
        } else {
            let server = SocketIOServer(configuration: configuration)
            install(server)
            (host, port, path, builtIn) = ("127.0.0.1", try await server.start(host: "127.0.0.1", port: 0), nil, server)
        }
    }

    func stop() async { await builtIn?.shutdown() }
}
