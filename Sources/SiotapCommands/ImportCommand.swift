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
        let session = { () async throws -> ImportRun in try await options.run(command: "import", io: io, fileSize: size) }
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
            throw CommandFailure(error.code == .cannotOpen ? .runtime : .badInput, error.message)
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

    @Option(help: "Write every record to this JSONL file.")
    var record: String?

    @Option(
        name: .customLong("max-inflate"),
        help: "How much compressed HTTP bodies and WebSocket messages may inflate to in all (500MB, 2GiB); past it they are recorded as import.inflate_limit errors. Default for a file: 64 MiB plus 100 times its size; for sniff: no limit but each message's 64 MiB."
    )
    var maxInflate: ByteCount?

    @OptionGroup(title: "Tokens")
    var tokens: JWTKeyOptions

    @Flag(help: "Print nothing per packet (still records).")
    var quiet = false

    @Flag(help: "Print capture records (JSONL) instead of the readable view.")
    var json = false

    @OptionGroup(title: "Inspector")
    var inspector: InspectorOptions

    func validate() throws {
        guard port.allSatisfy({ (1...65535).contains($0) }) else { throw ValidationError("--port takes 1 to 65535") }
    }

    /// `fileSize`: the size of the file imported (nil: a live capture), for the default budget.
    func run(command: String, io: CommandIO, fileSize: Int? = nil) async throws -> ImportRun {
        let budget = maxInflate.map { InflationBudget(total: $0.bytes) } ?? fileSize.map { InflationBudget(total: InflationBudget.forFile(ofSize: $0)) } ?? .unlimited
        let run = try ImportRun(
            command: command, io: io, record: record, json: json, quiet: quiet,
            inspector: JWTInspector(key: try tokens.key(), leewaySeconds: tokens.leeway), path: path, parser: parser.parser, ports: port, budget: budget,
            feed: inspector.address.map { _ in InspectorFeed(source: record ?? "siotap \(command)", capacity: inspector.buffer) }
        )
        if let address = inspector.address, let feed = run.feed {
            run.inspectorServer = try await InspectorOptions.start(at: address, allowRemote: inspector.allowRemote, feed: feed)
            io.writeError("siotap \(command): the inspector is at \(run.inspectorServer?.url ?? "")\n")
        }
        return run
    }
}

/// What `siotap import` and `siotap sniff` share: frames to records, written, shown, summed up.
final class ImportRun {
    private let command: String
    private let io: CommandIO
    private let writer: CaptureWriter?
    private let printer: RecordPrinter
    private let quiet: Bool
    private let record: String?
    private let inspector: JWTInspector
    private var importer: TrafficImporter
    /// Numbers the records when no writer does.
    private var sequence = 0
    private var packets = 0
    private var tokens = 0
    private var lastTime = 0.0
    /// A HAR file's entries, for the summary.
    private var entries: Int?
    /// Records not written yet, and whether they may wait for more (a file) or not (a live capture).
    private var pending: [CaptureRecord] = []
    /// About how many bytes `pending` holds: a batch is written at 512 records or 4 MiB, so that a
    /// file of large messages is never held in memory much beyond the one being decoded.
    private var pendingBytes = 0
    private let batched: Bool
    /// The records for the inspector, when `--ui` serves one.
    let feed: InspectorFeed?
    var inspectorServer: InspectorServer?

    init(
        command: String, io: CommandIO, record: String?, json: Bool, quiet: Bool, inspector: JWTInspector, path: String?,
        parser: SocketIOParser?, ports: [Int], budget: InflationBudget,
        feed: InspectorFeed?
    ) throws {
        self.feed = feed
        self.command = command
        batched = command == "import"
        self.io = io
        do { writer = try record.map { try CaptureWriter(path: $0) } } catch { throw CommandFailure("\(error)") }
        printer = RecordPrinter(io: io, json: json)
        self.quiet = quiet
        self.record = record
        self.inspector = inspector
        importer = TrafficImporter(path: path, parser: parser, ports: Set(ports.map(UInt16.init)), budget: budget)
    }

    deinit {
        writer?.close()
    }

    /// A frame's TCP segment (`nil`: the frame was something else).
    func take(_ segment: TCPSegment?, time: Double) async throws {
        lastTime = time
        guard let segment else { return }
        try await emit(importer.add(segment))
    }

    /// A HAR file's events, then the summary.
    func take(har source: HARSource) async throws {
        do {
            while let (event, flow) = try source.nextEvent() {
                lastTime = event.time
                try await emit(importer.take(event, on: flow))
            }
        } catch let failure as HARSource.Failure {
            throw CommandFailure(failure.message)
        }
        entries = source.entries
        try await finish()
    }

    /// The source failed (a file cut short): said in the capture too.
    func record(_ failure: PcapSource.Failure, in file: String) async throws {
        let error = ErrorRecord(dir: nil, code: failure.code == .truncated ? .truncatedCapture : .captureFailed, message: "\(file): \(failure.message)")
        try await emit(SessionAssembler.Output(), extra: [CaptureRecord(ts: RFC3339.format(secondsSince1970: lastTime), .error(error))])
    }

    /// Closes what is still open, writes the summary line.
    func finish() async throws {
        try await emit(importer.finish(time: lastTime))
        try flush()
        writer?.close()
        let conns = importer.conns
        io.writeError("siotap \(command): \(conns) conn\(conns == 1 ? "" : "s"), \(packets) packets, \(tokens) tokens, "
            + (entries.map { "from \($0) HAR entries" } ?? "\(importer.gaps) gap\(importer.gaps == 1 ? "" : "s") (\(importer.tcpConnections) TCP connections, \(importer.segments) segments)")
            + (record.map { "; written to \($0)" } ?? "") + "\n")
        if let inspectorServer {
            // The import is done; the page stays until the user has looked.
            // Caught before it is announced: a Ctrl-C right after the line is not fatal.
            let signals = SignalWaiter()
            io.writeError("siotap \(command): the inspector stays at \(inspectorServer.url); Ctrl-C stops\n")
            await signals.wait()
            await inspectorServer.stop()
        }
    }

    private func emit(_ output: SessionAssembler.Output, extra: [CaptureRecord] = []) async throws {
        pending += extra
        var records = output.records.map(\.record)
        for token in output.tokens {
            // Judged when it was seen: a token that was good during the incident is good here.
            let report = await inspector.inspect(token.token, now: token.time)
            records.append(CaptureRecord(ts: RFC3339.format(secondsSince1970: token.time), conn: token.conn, .jwt(JWTRecord(report: report, source: token.source, nsp: token.nsp))))
        }
        // Each token's record goes where its time puts it (a conn's records may have waited for its
        // first packet, tokens with them); the sort is stable, so records of one time keep their order.
        records.sort { $0.ts < $1.ts }
        for record in extra { pendingBytes += record.approximateSize }
        for record in records { pendingBytes += record.approximateSize }
        pending += records
        // A file's records go out in batches (a write per record cost more than decoding them); a
        // live capture's at once.
        if !batched || pending.count >= 512 || pendingBytes >= 4 << 20 { try flush() }
    }

    private func flush() throws {
        guard !pending.isEmpty else { return }
        pendingBytes = 0
        var written: [CaptureRecord] = []
        swap(&written, &pending)
        defer {
            // The next batch reuses this one's storage.
            written.removeAll(keepingCapacity: true)
            swap(&written, &pending)
        }
        if let writer {
            do { try writer.write(batch: &written) } catch { throw CommandFailure("the capture cannot be written: \(error)") }
        } else {
            for index in written.indices {
                sequence += 1
                written[index].seq = sequence
            }
        }
        for record in written {
            switch record.body {
            case .packet: packets += 1
            case .jwt: tokens += 1
            default: break
            }
            feed?.add(record)
            if !quiet { printer.print(record) }
        }
    }
}
