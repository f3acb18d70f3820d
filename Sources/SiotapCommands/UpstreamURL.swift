import ArgumentParser
import Foundation
import SocketIOProtocol

/// `http://host:port`, with an optional path: the proxy ignores it (it forwards each request's
/// own path); replay and bench take it as the Engine.IO path (`http://host:8000/chat/socket.io/`).
struct UpstreamURL: CustomStringConvertible, Sendable {
    var host: String
    var port: Int
    var path: String?
    /// `https://` or `wss://`: TLS (the proxy and replay, so far).
    var tls = false

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    init(_ text: String) throws {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              ["http", "https", "ws", "wss"].contains(scheme), let host = components.host, !host.isEmpty
        else {
            throw ValidationError("wants http://HOST:PORT or https://HOST:PORT")
        }
        self.host = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        tls = scheme == "https" || scheme == "wss"
        self.port = components.port ?? (tls ? 443 : 80)
        self.path = components.path.isEmpty || components.path == "/" ? nil : EngineRequest.normalisedPath(components.path)
    }

    var description: String { "\(tls ? "https" : "http")://\(host):\(port)" }

    /// For the commands that do not speak TLS to their target yet.
    func requirePlain(_ option: String) throws {
        if tls { throw CommandFailure(.badInput, "\(option): https is supported by siotap proxy and siotap replay only, so far") }
    }
}
