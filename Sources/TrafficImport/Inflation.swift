import CompressNIO
import NIOCore

/// What was compressed on the wire, inflated with zlib (through compress-nio): HTTP bodies with
/// `Content-Encoding: gzip` or `deflate`, and WebSocket messages with permessage-deflate.
enum Inflation {
    struct Failed: Error, CustomStringConvertible {
        var description: String
    }

    /// A body with `Content-Encoding` `gzip` (or `x-gzip`) or `deflate` (zlib-wrapped, as RFC
    /// 9110 says, or raw, as some servers send it); other encodings are not touched.
    static func body(_ bytes: [UInt8], encoding: String, limit: Int) throws(Failed) -> [UInt8] {
        let algorithms: [CompressionAlgorithm]
        switch encoding.lowercased().trimmingSpaces {
        case "gzip", "x-gzip": algorithms = [.gzip()]
        case "deflate": algorithms = [.zlib(), .deflate()]
        default: return bytes
        }
        for algorithm in algorithms {
            var input = ByteBuffer(bytes: bytes)
            if let output = try? input.decompress(with: algorithm, maxSize: limit) { return Array(output.readableBytesView) }
        }
        throw Failed(description: "a \(encoding) body that does not inflate")
    }

    /// One direction of a WebSocket with permessage-deflate (RFC 7692): raw deflate, each message
    /// ended by a sync flush the sender took off, the window kept from message to message unless
    /// the handshake said `…_no_context_takeover`.
    final class Messages {
        private let decompressor: any NIODecompressor
        let takeover: Bool

        init(takeover: Bool) throws(Failed) {
            self.takeover = takeover
            decompressor = CompressionAlgorithm.deflate().decompressor
            do { try decompressor.startStream() } catch { throw Failed(description: "zlib: \(error)") }
        }

        deinit {
            try? decompressor.finishStream()
        }

        func inflate(_ bytes: [UInt8], limit: Int) throws(Failed) -> [UInt8] {
            var input = ByteBuffer(bytes: bytes)
            input.writeBytes([0x00, 0x00, 0xFF, 0xFF])
            do {
                let output = try input.decompressStream(with: decompressor, maxSize: limit)
                if !takeover { try decompressor.resetStream() }
                return Array(output.readableBytesView)
            } catch {
                throw Failed(description: "a compressed message that does not inflate (\(error))")
            }
        }
    }

    /// The permessage-deflate a 101's `Sec-WebSocket-Extensions` agreed to, if any: whether the
    /// client's and the server's messages keep their window.
    static func negotiated(_ extensions: String?) -> (clientTakeover: Bool, serverTakeover: Bool)? {
        guard let extensions else { return nil }
        for offer in extensions.split(separator: ",") {
            let parameters = offer.split(separator: ";").map { $0.lowercased().trimmingSpaces }
            guard parameters.first == "permessage-deflate" else { continue }
            return (!parameters.contains("client_no_context_takeover"), !parameters.contains("server_no_context_takeover"))
        }
        return nil
    }
}

extension StringProtocol {
    /// Without the spaces and tabs around it (HTTP's optional whitespace).
    var trimmingSpaces: String {
        var bytes = Substring(self).utf8[...]
        while let first = bytes.first, first == 32 || first == 9 { bytes = bytes.dropFirst() }
        while let last = bytes.last, last == 32 || last == 9 { bytes = bytes.dropLast() }
        return String(decoding: bytes, as: UTF8.self)
    }
}
