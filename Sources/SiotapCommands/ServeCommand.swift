import ArgumentParser
import Dispatch
import Foundation
import SocketIOProtocol
import DemoApps
import SocketIOServer
import SocketIOTransport

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the built-in Swift Socket.IO server with the chat or conformance app.",
        discussion: """
            Serves Engine.IO 4 (socket.io 3.x/4.x clients) and Engine.IO 3 (socket.io 1.x/2.x clients) \
            over HTTP long-polling, WebSocket, and the upgrade between them.

            chat: the seed guide's server: a JWT (HS256) middleware, a room per user, chat messages, \
            rooms and notifications. The secret comes from --jwt-secret, else JWT_SECRET, else the \
            guide's default "your-secret-key" (with a warning). \
            conformance: the server the official engine.io-protocol and socket.io-protocol suites \
            expect; run it with --ping-interval 300 --ping-timeout 200 for them.

            --recovery MS turns on connection-state recovery (socket.io 4.6+'s connectionStateRecovery, \
            protocol v5 clients): each CONNECT answer carries a private id (pid), each event sent to \
            clients gets an offset as its last argument, and a client that lost its connection comes \
            back within MS milliseconds with its pid and last offset to get its socket (id, rooms, \
            data) and the events it missed; socket.recovered is then true.

            --parser msgpack speaks the msgpack parser (socket.io-msgpack-parser, python-socketio's \
            serializer="msgpack") instead of JSON text; clients must use the same.

            Stops cleanly on SIGINT or SIGTERM.

            Exit codes: 0 stopped by SIGINT or SIGTERM; 1 it cannot listen; 2 wrong arguments.

            Examples:
              siotap serve
              JWT_SECRET=s3cret siotap serve --listen 127.0.0.1:4000
              siotap serve --app conformance --ping-interval 300 --ping-timeout 200 --cors '*'
              siotap serve --app conformance --parser msgpack
              siotap serve --recovery 120000
            """
    )

    @Option(help: "Address and port to listen on (default: 127.0.0.1:3000).", transform: ListenAddress.init)
    var listen = ListenAddress(host: "127.0.0.1", port: 3000)

    @Option(help: "The app to serve: chat or conformance.")
    var app: DemoApp = .chat

    @Option(name: .customLong("jwt-secret"), help: "HS256 secret for the chat app's tokens.")
    var jwtSecret: String?

    @Option(name: .customLong("ping-interval"), help: "Milliseconds between heartbeats.")
    var pingInterval = 25_000

    @Option(name: .customLong("ping-timeout"), help: "Milliseconds to wait for a heartbeat answer.")
    var pingTimeout = 20_000

    @Option(name: .customLong("max-payload"), help: "Largest polling body or WebSocket message, in bytes.")
    var maxPayload = 1_000_000

    @Option(name: .customLong("connect-timeout"), help: "Milliseconds a client may take to connect to a namespace.")
    var connectTimeout = 45_000

    @Option(help: "The Engine.IO path.")
    var path = "/socket.io/"

    @Option(help: "Allowed CORS origin ('*' for any); repeat for several. None: no CORS headers.")
    var cors: [String] = []

    @Flag(name: .customLong("no-eio3"), help: "Refuse Engine.IO 3 (socket.io 1.x/2.x) clients.")
    var noEIO3 = false

    @Option(help: "Connection-state recovery: how long, in milliseconds, a client may be away and get its socket back (see above).")
    var recovery: Int?

    @Option(help: "How packets are written: json or msgpack.")
    var parser: SocketIOParser = .json

    @Flag(help: "Set the io cookie (the session id) on handshakes, for load-balancer stickiness.")
    var cookie = false

    func validate() throws {
        guard pingInterval > 0, pingTimeout > 0, maxPayload > 0, connectTimeout > 0, (recovery ?? 1) > 0 else {
            throw ValidationError("Intervals, timeouts and sizes must be positive.")
        }
    }

    func run() async throws {
        let io = CommandIO.current
        let address = listen
        let server = SocketIOServer(configuration: .init(engine: EngineConfiguration(
            path: path, pingInterval: pingInterval, pingTimeout: pingTimeout, maxPayload: maxPayload, allowEIO3: !noEIO3,
            connectTimeout: connectTimeout, corsOrigins: cors.isEmpty ? nil : cors, cookie: cookie
        ), parser: parser, recoveryMilliseconds: recovery))
        switch app {
        case .chat:
            let secret = jwtSecret ?? io.environment["JWT_SECRET"]
            if secret == nil {
                io.writeError("warning: no --jwt-secret or JWT_SECRET: using the guide's default secret \"\(ChatApp.defaultSecret)\"\n")
            }
            ChatApp.install(on: server, secret: secret ?? ChatApp.defaultSecret)
        case .conformance:
            ConformanceApp.install(on: server)
        }
        let signals = SignalWaiter()
        let port: Int
        do {
            port = try await server.start(host: address.host, port: address.port)
        } catch {
            throw CommandFailure("cannot listen on \(listen): \(SocketErrorText.describe(error))")
        }
        io.write("siotap serve: \(app.rawValue) app listening on http://\(address.host):\(port)\(path)\(parser == .msgpack ? " (msgpack parser)" : "")\n")
        await signals.wait()
        io.write("siotap serve: shutting down\n")
        await server.shutdown()
    }
}
