import ArgumentParser
import Foundation
import SocketIOProtocol

/// `http://host:port`, with an optional path: the proxy ignores it (it forwards each request's
/// own path); replay and bench take it as the Engine.IO path (`http://host:8000/chat/socket.io/`).
struct UpstreamURL: CustomStringConvertible, Sendable {
    var host: String
    var port: Int
    var path: String?

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    init(_ text: String) throws {
        guard let components = URLComponents(string: text), components.scheme == "http", let host = components.host, !host.isEmpty else {
            throw ValidationError("wants http://HOST:PORT (https is not supported yet)")
        }
        self.host = host
        self.port = components.port ?? 80
        self.path = components.path.isEmpty || components.path == "/" ? nil : EngineRequest.normalisedPath(components.path)
    }

    var description: String { "http://\(host):\(port)" }
}
