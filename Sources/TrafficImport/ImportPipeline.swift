public import JWTInspection
public import TrafficCapture

/// What `siotap import` and `siotap sniff` do with their frames, whatever reads them: frames (or a
/// HAR file's events) to records (``TrafficImporter``), each token judged at the time it was
/// seen, all added in time order to a ``CaptureQueue``.
///
/// A queue that writes on flush (an import) is flushed every 512 records or 4 MiB, so that a file
/// of large messages is never held in memory much beyond the one being decoded; a live capture's
/// queue writes on its own thread.
public final class ImportPipeline {
    private var importer: TrafficImporter
    private let inspector: JWTInspector
    private let queue: CaptureQueue
    private let flushed: () throws -> Void
    /// The time of the last frame or event taken (a failure's record is stamped with it).
    public private(set) var lastTime = 0.0

    /// - Parameter flushed: called after each flush of the queue; throws to stop the import (the
    ///   capture cannot be written).
    public init(importer: TrafficImporter, inspector: JWTInspector, queue: CaptureQueue, flushed: @escaping () throws -> Void = {}) {
        self.importer = importer
        self.inspector = inspector
        self.queue = queue
        self.flushed = flushed
    }

    /// Sessions seen, TCP connections and segments read, gaps found: for a summary.
    public struct Summary: Sendable, Equatable {
        public var conns: Int
        public var tcpConnections: Int
        public var segments: Int
        public var gaps: Int
    }

    public var summary: Summary {
        Summary(conns: importer.conns, tcpConnections: importer.tcpConnections, segments: importer.segments, gaps: importer.gaps)
    }

    /// A frame's TCP segment (`nil`: the frame was something else).
    public func take(_ segment: TCPSegment?, time: Double) async throws {
        lastTime = time
        guard let segment else { return }
        try await add(importer.add(segment))
    }

    /// An HTTP event of a HAR file's flow.
    public func take(_ event: HTTPConversation.Event, on flow: SessionAssembler.Flow) async throws {
        lastTime = event.time
        try await add(importer.take(event, on: flow))
    }

    /// The source stopped early (a file cut short, a read that failed): said in the capture too.
    public func record(failure code: ErrorCode, message: String) async throws {
        var output = SessionAssembler.Output()
        output.records.append(SessionAssembler.Stamped(body: .error(ErrorRecord(dir: nil, code: code, message: message)), conn: nil, time: lastTime))
        try await add(output)
    }

    /// Closes the sessions still open, as of the last frame's time.
    public func finish() async throws {
        try await add(importer.finish(time: lastTime))
    }

    private func add(_ output: SessionAssembler.Output) async throws {
        var records = output.records
        for token in output.tokens {
            // Judged when it was seen: a token that was good during the incident is good here.
            let report = await inspector.inspect(token.token, now: token.time)
            records.append(.init(body: .jwt(JWTRecord(report: report, source: token.source, nsp: token.nsp)), conn: token.conn, time: token.time))
        }
        // Each token's record goes where its time puts it (a conn's records may have waited for its
        // first packet, tokens with them); the sort is stable, so records of one time keep their order.
        records.sort { $0.time < $1.time }
        guard !records.isEmpty else { return }
        for record in records { queue.add(record.body, conn: record.conn, time: record.time) }
        let (waiting, bytes) = queue.waiting
        if waiting >= 512 || bytes >= 4 << 20 {
            queue.flush()
            try flushed()
        }
    }
}
