import ArgumentParser
import Foundation
import JWTInspection
import PcapInput
import TrafficCapture
import TrafficImport

struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Turn a pcap or pcapng file (tcpdump, Wireshark) into a capture: every Socket.IO session in it, decoded.",
        discussion: """
            Each TCP connection is put back in order, read as HTTP/1.1 and WebSocket, and its \
            Engine.IO sessions joined across connections by their sid, as siotap proxy records \
            them: the same records (capture format v1), with the capture's own times, so the view, \
            replay, mock and redact work on the result. Engine.IO traffic is found on any path by \
            its query (or on --path only). Bytes the capture lost are never guessed: they become \
            pcap.gap error records. Traffic inside TLS cannot be read (use siotap proxy, or its \
            SSLKEYLOGFILE with Wireshark).

            A summary goes to stderr at the end; a file over 50 MB shows its progress there.

            Exit codes: 0 read to its end; 1 the capture cannot be written, or the file ends inside \
            a frame (everything before it is written); 2 not a capture file, or a bad filter.

            Examples:
              sudo tcpdump -i lo -w session.pcap 'tcp port 3000'
              siotap import session.pcap --record session.jsonl
              siotap import prod.pcapng --port 443 --port 8080 --json | jq 'select(.kind=="packet")'
              siotap import capture.pcap --filter 'host 10.0.0.7' --jwt-secret "$JWT_SECRET"
            """
    )

    @Argument(help: "A pcap or pcapng file.")
    var file: String

    @Option(help: "A BPF filter, as tcpdump takes it ('tcp port 3000').")
    var filter: String?

    @Option(help: "Read only TCP connections with this port; repeatable.")
    var port: [Int] = []

    @Option(help: "Decode Engine.IO traffic on this path only.")
    var path: String?

    @Option(help: "Write every record to this JSONL file.")
    var record: String?

    @OptionGroup(title: "Tokens")
    var tokens: JWTKeyOptions

    @Flag(help: "Print nothing per packet (still records).")
    var quiet = false

    @Flag(help: "Print capture records (JSONL) instead of the readable view.")
    var json = false

    func run() async throws {
        let io = CommandIO.current
        guard port.allSatisfy({ (1...65535).contains($0) }) else { throw ValidationError("--port takes 1 to 65535") }
        let key = try tokens.key()
        let source: PcapSource
        do { source = try PcapSource.open(file: file, filter: filter) } catch {
            throw CommandFailure(error.code == .cannotOpen ? .runtime : .badInput, error.message)
        }
        let writer: CaptureWriter?
        do { writer = try record.map { try CaptureWriter(path: $0) } } catch { throw CommandFailure("\(error)") }
        defer { writer?.close() }
        let printer = RecordPrinter(io: io, json: json)
        let inspector = JWTInspector(key: key, leewaySeconds: tokens.leeway)
        var importer = TrafficImporter(path: path, ports: Set(port.map(UInt16.init)))
        var summary = Summary()
        let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
        var progress = Progress(io: io, total: size)

        func emit(_ output: SessionAssembler.Output) async throws {
            var written: [CaptureRecord] = []
            for stamped in output.records { written.append(stamped.record) }
            for token in output.tokens {
                let report = await inspector.inspect(token.token)
                written.append(CaptureRecord(ts: RFC3339.format(secondsSince1970: token.time), conn: token.conn, .jwt(JWTRecord(report: report, source: token.source, nsp: token.nsp))))
            }
            for record in written {
                let stamped: CaptureRecord
                do { stamped = try writer?.write(record) ?? record } catch { throw CommandFailure("the capture cannot be written: \(error)") }
                summary.count(stamped)
                if !quiet { printer.print(stamped) }
            }
        }

        var lastTime = 0.0
        var truncated: String?
        do {
            while let frame = try source.next() {
                lastTime = frame.time
                if let segment = PacketDecoding.tcpSegment(frame.bytes, linkType: source.linkType, time: frame.time) {
                    try await emit(importer.add(segment))
                }
                progress.advance(to: source.position)
            }
        } catch let failure as PcapSource.Failure {
            truncated = failure.message
            let record = CaptureRecord(ts: RFC3339.format(secondsSince1970: lastTime), .error(ErrorRecord(dir: nil, code: ErrorCode(rawValue: failure.code.rawValue), message: "\(file): \(failure.message)")))
            _ = try? writer?.write(record)
            if !quiet { printer.print(record) }
        }
        try await emit(importer.finish(time: lastTime))
        progress.done()
        io.writeError("siotap import: \(importer.conns) conn\(importer.conns == 1 ? "" : "s"), \(summary.packets) packets, \(summary.tokens) tokens, "
            + "\(importer.gaps) gap\(importer.gaps == 1 ? "" : "s") (\(importer.tcpConnections) TCP connections, \(importer.segments) segments)"
            + (record.map { "; written to \($0)" } ?? "") + "\n")
        if let truncated { throw CommandFailure("\(file) ends inside a frame (\(truncated)); everything before it was imported") }
    }

    struct Summary {
        var packets = 0
        var tokens = 0

        mutating func count(_ record: CaptureRecord) {
            switch record.body {
            case .packet: packets += 1
            case .jwt: tokens += 1
            default: break
            }
        }
    }

    /// A line on stderr as a big file is read, at most once a second.
    struct Progress {
        let io: CommandIO
        let total: Int
        var lastShown = Date()
        var shown = false

        init(io: CommandIO, total: Int) {
            self.io = io
            self.total = total
        }

        mutating func advance(to position: Int) {
            guard total > 50 << 20, Date().timeIntervalSince(lastShown) >= 1 else { return }
            lastShown = Date()
            shown = true
            io.writeError("siotap import: \(position * 100 / max(1, total))% of \(total >> 20) MB\n")
        }

        mutating func done() {
            if shown { io.writeError("siotap import: 100%\n") }
        }
    }
}
