import JWTInspection
public import SocketIOProtocol
public import SocketIOServer

/// The seed guide's chat server, as its code plainly intends (`docs/demo-apps.md`): a JWT
/// middleware on `/`, a room per user, chat messages, rooms and notifications.
public enum ChatApp {
    /// The seed's fallback secret, used (with a warning) when none is configured.
    public static let defaultSecret = "your-secret-key"

    public static func install(on io: SocketIOServer, secret: String) {
        let inspector = JWTInspector(key: .secret(secret))
        io.use { socket in
            guard let token = token(of: socket) else {
                throw ConnectionRefused("Authentication error: No token provided")
            }
            let report = await inspector.inspect(token)
            guard report.verified == true, report.algorithm == "HS256" else {
                throw ConnectionRefused("Authentication error: Invalid token")
            }
            socket[data: "user"] = report.claims
        }

        io.on(.connection) { socket in
            let user = socket[data: "user"] ?? .null
            if let id = user["id"] { socket.join("user-\(id.scalarText)") }
            let rooms = Set(user["rooms"]?.arrayValue?.compactMap(\.stringValue) ?? [])

            socket.on("user connection") { args, _ in
                await socket.broadcast.emit("user connection", [args.first ?? .null])
            }
            socket.on("message") { args, _ in
                let payload = args.first ?? .null
                let text = payload["message"]?.scalarText ?? ""
                await socket.emit("chat response", [.string("You sent: \(text)")])
                let forwarded: JSONValue = .object(["message": payload["message"] ?? .null, "sender": payload["sender"] ?? .null])
                await socket.broadcast.emit("message", [forwarded])
            }
            socket.on("user disconnected") { args, _ in
                await io.emit("user disconnected", [.string((args.first ?? .null).scalarText)])
            }
            socket.on("joinRoom") { args, _ in
                guard let room = args.first?.stringValue, rooms.contains(room) || room.hasPrefix("public-") else { return }
                socket.join(room)
                await socket.emit("roomJoined", [.string(room)])
            }
            socket.on("notify") { args, _ in
                let payload = args.first ?? .null
                guard let to = payload["to"] else { return }
                await io.to("user-\(to.scalarText)").emit("notification", [.object(["message": payload["message"] ?? .null])])
            }
        }
    }

    /// The CONNECT auth `token` (v5), the `token` query parameter (v4 clients send no CONNECT
    /// payload for `/`), or an `Authorization: Bearer` header.
    static func token(of socket: Socket) -> String? {
        if let token = socket.handshake.auth["token"]?.stringValue, !token.isEmpty { return token }
        if let token = socket.handshake.query("token"), !token.isEmpty { return token }
        if let header = socket.handshake.header("Authorization"), header.lowercased().hasPrefix("bearer ") {
            let token = String(header.dropFirst(7))
            return token.isEmpty ? nil : token
        }
        return nil
    }
}
