import ArgumentParser
import SiotapInspector
import Foundation
import JWTInspection
import PcapInput
import TrafficCapture
import TrafficImport

struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Turn a pcap or pcapng file (tcpdump, Wireshark), or a browser's HAR export, into a capture: every Socket.IO session in it, decoded.",
        discussion: """
            Each TCP connection is put back in order, read as HTTP/1.1 and WebSocket, and its \
            Engine.IO sessions joined across connections by their sid, as siotap proxy records \
            them: the same records (capture format v1), with the capture's own times, so the view, \
            replay, mock and redact work on the result. Engine.IO traffic is found on any path by \
            its query (or on --path only). Bytes the capture lost are never guessed: they become \
            pcap.gap error records. Traffic inside TLS cannot be read (use siotap proxy, or its \
            SSLKEYLOGFILE with Wireshark). Tokens are judged at the time they were captured.

            A HAR file (Chrome's or Firefox's developer tools, "Save all as HAR"; told by its .har \
            name or its JSON) gives the same records from its entries: polling bodies from the \
            responses, WebSocket messages from _webSocketMessages, times from the browser.

            A summary goes to stderr at the end; a file over 50 MB shows its progress there.

            Exit codes: 0 read to its end; 1 the capture cannot be written, or the file ends inside \
            a frame (everything before it is written); 2 not a capture file, or a bad filter.

            Examples:
              sudo tcpdump -i lo -w session.pcap 'tcp port 3000'
              siotap import session.pcap --record session.jsonl
              siotap import prod.pcapng --port 443 --port 8080 --json | jq 'select(.kind=="packet")'
              siotap import capture.pcap --filter 'host 10.0.0.7' --jwt-secret "$JWT_SECRET"
              siotap import localhost.har --record from-the-browser.jsonl
            """
    )

    @Argument(help: "A pcap, pcapng or HAR file.")
    var file: String

    @OptionGroup
    var options: ImportOptions

    func run() async throws {
        let io = CommandIO.current
        let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
        let session = { () async throws -> ImportSession in try await options.run(command: "import", io: io, fileSize: size) }
        let filter = options.filter
        if try Self.isHAR(file) {
            guard filter == nil, options.port.isEmpty else { throw ValidationError("--filter and --port are for pcap files, not HAR") }
            var progress = Progress(io: io, total: size)
            let source: HARSource
            do { source = try HARSource(path: file) { progress.advance(to: $0) } } catch { throw CommandFailure(.badInput, "\(file): \(error)") }
            progress.done()
            try await session().take(har: source)
            return
        }
        let source: PcapSource
        do { source = try PcapSource.open(file: file, filter: filter) } catch {
            throw CommandFailure([.cannotOpen, .libraryMissing].contains(error.code) ? .runtime : .badInput, error.message)
        }
        let run = try await session()
        var progress = Progress(io: io, total: size)
        var truncated: String?
        do {
            var frames = 0
            let linkType = source.linkType
            while let (segment, time) = try source.next({ bytes, time in (PacketDecoding.tcpSegment(bytes, linkType: linkType, time: time), time) }) {
                try await run.take(segment, time: time)
                frames += 1
                // Where the file is costs a system call: asked now and then.
                if frames % 4096 == 0 { progress.advance(to: source.position) }
            }
        } catch let failure as PcapSource.Failure {
            truncated = failure.message
            try await run.record(failure, in: file)
        }
        progress.done()
        try await run.finish()
        if let truncated { throw CommandFailure("\(file) ends inside a frame (\(truncated)); everything before it was imported") }
    }

    /// A HAR file by its name, or by its first character (JSON), pcap files being binary.
    static func isHAR(_ path: String) throws -> Bool {
        if path.lowercased().hasSuffix(".har") { return true }
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 64)) ?? Data()
        return head.first { ![9, 10, 13, 32].contains($0) } == UInt8(ascii: "{")
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

/// The options `siotap import` and `siotap sniff` share.
struct ImportOptions: ParsableArguments {
    @Option(help: "A BPF filter, as tcpdump takes it ('tcp port 3000').")
    var filter: String?

    @Option(help: "Read only TCP connections with this port; repeatable.")
    var port: [Int] = []

    @Option(help: "Decode Engine.IO traffic on this path only.")
    var path: String?

    @Option(help: "The sessions' Socket.IO parser: auto (each session's first packet tells), json or msgpack.")
    var parser: ParserChoice = .auto

    @Option(
        name: .customLong("max-inflate"),
        help: "How much compressed HTTP bodies and WebSocket messages may inflate to in all (500MB, 2GiB); past it they are recorded as import.inflate_limit errors. Default for a file: 64 MiB plus 100 times its size; for sniff: no limit but each message's 64 MiB."
    )
    var maxInflate: ByteCount?

    @OptionGroup(title: "Tokens")
    var tokens: JWTKeyOptions

    @OptionGroup(title: "Recording")
    var recording: RecordingOptions

    func validate() throws {
        guard port.allSatisfy({ (1...65535).contains($0) }) else { throw ValidationError("--port takes 1 to 65535") }
    }

    /// `fileSize`: the size of the file imported (nil: a live capture), for the default budget.
    func run(command: String, io: CommandIO, fileSize: Int? = nil) async throws -> ImportSession {
        let budget = maxInflate.map { InflationBudget(total: $0.bytes) } ?? fileSize.map { InflationBudget(total: InflationBudget.forFile(ofSize: $0)) } ?? .unlimited
        // A file's records are written by the import itself, in batches (see ImportPipeline); a
        // live capture's by the queue's thread, as the proxy's.
        let recording = try self.recording.recording(command: command, io: io, draining: fileSize == nil ? .background : .onFlush)
        let pipeline = ImportPipeline(
            importer: TrafficImporter(path: path, parser: parser.parser, ports: Set(port.map(UInt16.init)), budget: budget),
            inspector: JWTInspector(key: try tokens.key(), leewaySeconds: tokens.leeway), queue: recording.queue,
            flushed: { if let failure = recording.writeFailure { throw CommandFailure("the capture cannot be written: \(failure)") } }
        )
        let session = ImportSession(command: command, io: io, record: self.recording.record, recording: recording, pipeline: pipeline)
        if let address = self.recording.inspector.address, let feed = recording.feed {
            session.inspectorServer = try await InspectorOptions.start(at: address, allowRemote: self.recording.inspector.allowRemote, feed: feed)
            io.writeError("siotap \(command): the inspector is at \(session.inspectorServer?.url ?? "")\n")
        }
        return session
    }
}

/// An import's command side (`siotap import`, `siotap sniff`): its ``ImportPipeline``, the
/// recording it adds to, the summary at the end, and the inspector kept until Ctrl-C.
final class ImportSession {
    private let command: String
    private let io: CommandIO
    private let record: String?
    private let recording: Recording
    let pipeline: ImportPipeline
    /// A HAR file's entries, for the summary.
    private var entries: Int?
    var inspectorServer: InspectorServer?

    init(command: String, io: CommandIO, record: String?, recording: Recording, pipeline: ImportPipeline) {
        self.command = command
        self.io = io
        self.record = record
        self.recording = recording
        self.pipeline = pipeline
    }

    deinit {
        recording.finish()
    }

    /// A frame's TCP segment (`nil`: the frame was something else).
    func take(_ segment: TCPSegment?, time: Double) async throws {
        try await pipeline.take(segment, time: time)
    }

    /// A HAR file's events, then the summary.
    func take(har source: HARSource) async throws {
        do {
            while let (event, flow) = try source.nextEvent() { try await pipeline.take(event, on: flow) }
        } catch let failure as HARSource.Failure {
            throw CommandFailure(failure.message)
        }
        entries = source.entries
        try await finish()
    }

    /// The source failed (a file cut short): said in the capture too.
    func record(_ failure: PcapSource.Failure, in file: String) async throws {
        try await pipeline.record(failure: failure.code == .truncated ? .truncatedCapture : .captureFailed, message: "\(file): \(failure.message)")
    }

    /// Closes what is still open, writes the summary line.
    func finish() async throws {
        try await pipeline.finish()
        recording.finish()
        if let failure = recording.writeFailure { throw CommandFailure("the capture cannot be written: \(failure)") }
        let summary = pipeline.summary
        io.writeError("siotap \(command): \(summary.conns) conn\(summary.conns == 1 ? "" : "s"), \(recording.packets) packets, \(recording.tokens) tokens, "
            + (entries.map { "from \($0) HAR entries" }
                ?? "\(summary.gaps) gap\(summary.gaps == 1 ? "" : "s") (\(summary.tcpConnections) TCP connections, \(summary.segments) segments)")
            + (record.map { "; written to \($0)" } ?? "") + "\n")
        io.writeError(DiagnoseCommand.stopSummary(recording.diagnoses, command: command))
        if let inspectorServer {
            // The import is done; the page stays until the user has looked.
            // Caught before it is announced: a Ctrl-C right after the line is not fatal.
            let signals = SignalWaiter()
            io.writeError("siotap \(command): the inspector stays at \(inspectorServer.url); Ctrl-C stops\n")
            await signals.wait()
            await inspectorServer.stop()
        }
    }
}
