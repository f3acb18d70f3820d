import CompressNIO
import NIOCore

/// How many bytes one import may inflate in all, so that a small file of compression bombs (16
/// bodies of 60 MiB in 1 MB of pcap) cannot take gigabytes: past it, compressed bodies and
/// messages are recorded as `import.inflate_limit` errors instead of their data. Shared by all of
/// an import's connections.
public final class InflationBudget {
    /// The default for a file of `fileSize` bytes: 64 MiB, then 100 bytes per byte of the file.
    public static func forFile(ofSize fileSize: Int) -> Int {
        let (scaled, overflow) = fileSize.multipliedReportingOverflow(by: 100)
        return overflow ? Int.max : (64 << 20) + scaled
    }

    public let total: Int
    public private(set) var used = 0

    public init(total: Int) {
        self.total = max(0, total)
    }

    /// No budget: each message's own limit only (a live capture).
    public static var unlimited: InflationBudget { InflationBudget(total: Int.max) }

    var remaining: Int { total - used }

    func spend(_ bytes: Int) {
        used += min(bytes, remaining)
    }

    var exhaustedMessage: String {
        "the import's inflation budget (\(total) bytes, --max-inflate) is spent: compressed data is not inflated any more"
    }
}

/// What was compressed on the wire, inflated with zlib (through compress-nio): HTTP bodies with
/// `Content-Encoding: gzip` or `deflate`, and WebSocket messages with permessage-deflate.
enum Inflation {
    struct Failed: Error, CustomStringConvertible {
        var description: String
        /// Stopped by the import's budget rather than by the data.
        var overBudget = false
    }

    /// The limit for one inflation: the message limit, or what is left of the budget; nil (and
    /// the reason) when nothing is left.
    static func limit(_ maxMessageSize: Int, _ budget: InflationBudget) throws(Failed) -> (limit: Int, byBudget: Bool) {
        guard budget.remaining > 0 else { throw Failed(description: budget.exhaustedMessage, overBudget: true) }
        return budget.remaining < maxMessageSize ? (budget.remaining, true) : (maxMessageSize, false)
    }

    /// A body with `Content-Encoding` `gzip` (or `x-gzip`) or `deflate` (zlib-wrapped, as RFC
    /// 9110 says, or raw, as some servers send it); other encodings are not touched.
    static func body(_ bytes: [UInt8], encoding: String, maxMessageSize: Int, budget: InflationBudget) throws(Failed) -> [UInt8] {
        let algorithms: [CompressionAlgorithm]
        switch encoding.lowercased().trimmingSpaces {
        case "gzip", "x-gzip": algorithms = [.gzip()]
        case "deflate": algorithms = [.zlib(), .deflate()]
        default: return bytes
        }
        let (limit, byBudget) = try limit(maxMessageSize, budget)
        for algorithm in algorithms {
            var input = ByteBuffer(bytes: bytes)
            if let output = try? input.decompress(with: algorithm, maxSize: limit) {
                budget.spend(output.readableBytes)
                return Array(output.readableBytesView)
            }
        }
        if byBudget {
            budget.spend(budget.remaining)
            throw Failed(description: budget.exhaustedMessage, overBudget: true)
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

        func inflate(_ bytes: [UInt8], maxMessageSize: Int, budget: InflationBudget) throws(Failed) -> [UInt8] {
            let (limit, byBudget) = try Inflation.limit(maxMessageSize, budget)
            var input = ByteBuffer(bytes: bytes)
            input.writeBytes([0x00, 0x00, 0xFF, 0xFF])
            do {
                let output = try input.decompressStream(with: decompressor, maxSize: limit)
                if !takeover { try decompressor.resetStream() }
                budget.spend(output.readableBytes)
                return Array(output.readableBytesView)
            } catch {
                if byBudget {
                    budget.spend(budget.remaining)
                    throw Failed(description: budget.exhaustedMessage, overBudget: true)
                }
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
