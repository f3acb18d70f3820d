public import SocketIOServer

/// The server the official Engine.IO and Socket.IO compliance suites expect (`docs/demo-apps.md`):
/// namespaces `/` and `/custom`, no authentication, echoes with and without acks; and a bare
/// Engine.IO echo at `/engine.io/`.
public enum ConformanceApp {
    public static func install(on io: SocketIOServer) {
        // The engine.io-protocol suite talks to a bare Engine.IO server that echoes messages.
        io.addEngineEcho(path: "/engine.io/")
        for name in ["/", "/custom"] {
            io.of(name).on(.connection) { socket in
                await socket.emit("auth", [socket.handshake.auth])
                socket.on("message") { args, _ in
                    await socket.emit("message-back", args)
                }
                socket.on("message-with-ack") { args, ack in
                    await ack?.send(args)
                }
            }
        }
    }
}
