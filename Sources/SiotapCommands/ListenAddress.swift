import ArgumentParser
import Foundation

/// `HOST:PORT`, `:PORT` or `PORT`; parsed with the command line (`@Option(transform:)`).
struct ListenAddress: CustomStringConvertible, Sendable {
    var host: String
    var port: Int

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    init(_ text: String) throws {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard let portText = parts.last, let port = Int(portText), (0...65535).contains(port) else {
            throw ValidationError("wants HOST:PORT, e.g. 127.0.0.1:3000")
        }
        let host = parts.dropLast().joined(separator: ":")
        self.host = host.isEmpty ? "127.0.0.1" : host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        self.port = port
    }

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
