import ArgumentParser
import Foundation

/// `HOST:PORT`, `:PORT` or `PORT`.
struct ListenAddress {
    var host: String
    var port: Int

    init(_ text: String) throws {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard let portText = parts.last, let port = Int(portText), (0...65535).contains(port) else {
            throw ValidationError("--listen wants HOST:PORT, e.g. 127.0.0.1:3000 (got \(text))")
        }
        let host = parts.dropLast().joined(separator: ":")
        self.host = host.isEmpty ? "127.0.0.1" : host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        self.port = port
    }
}
