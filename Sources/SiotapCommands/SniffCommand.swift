import ArgumentParser
import PcapInput
import Synchronization
import TrafficImport

struct SniffCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sniff",
        abstract: "Watch a network interface and show (and record) the Socket.IO sessions on it, decoded, as they happen.",
        discussion: """
            What siotap import does with a file, live, through libpcap: no proxy in the path. \
            Capturing needs root or CAP_NET_RAW (sudo setcap cap_net_raw+ep $(which siotap)). Traffic \
            inside TLS cannot be read.

            Exit codes: 0 stopped by SIGINT or SIGTERM (every conn closed in the capture, the last \
            line whole); 1 the interface cannot be opened (no such interface, no permission) or the \
            capture cannot be written; 2 a bad filter.

            Examples:
              sudo siotap sniff -i lo --port 3000
              sudo siotap sniff -i eth0 --filter 'host 10.0.0.7 and tcp port 8080' --record live.jsonl
            """
    )

    @Option(name: [.short, .customLong("interface")], help: "The interface to capture on (lo, eth0, any).")
    var interface: String

    @OptionGroup
    var options: ImportOptions

    func run() async throws {
        let io = CommandIO.current
        // A port filter in the kernel too: what is not wanted is not copied out.
        let portFilter = options.port.isEmpty ? nil : options.port.map { "tcp port \($0)" }.joined(separator: " or ")
        let combined = [options.filter, portFilter].compactMap { $0 }.map { "(\($0))" }.joined(separator: " and ")
        let source: PcapSource
        do { source = try PcapSource.open(interface: interface, filter: combined.isEmpty ? nil : combined) } catch {
            throw CommandFailure(error.code == .badFilter ? .badInput : .runtime, error.message)
        }
        let session = try await options.run(command: "sniff", io: io)
        let linkType = source.linkType
        func segmentOf(_ bytes: UnsafeRawBufferPointer, time: Double) -> (TCPSegment?, Double) {
            (PacketDecoding.tcpSegment(bytes, linkType: linkType, time: time), time)
        }
        let signals = SignalWaiter()
        let stopped = Atomic<Bool>(false)
        let waiting = Task {
            await signals.wait()
            stopped.store(true, ordering: .releasing)
        }
        io.writeError("siotap sniff: capturing on \(interface)" + (combined.isEmpty ? "" : " (\(combined))")
            + (options.recording.record.map { ", recording to \($0)" } ?? "") + "; Ctrl-C to stop\n")
        // next() does not block: between frames the loop sees a signal at once, and when nothing
        // is waiting it sleeps a little.
        while !stopped.load(ordering: .acquiring), !source.finished {
            do {
                if let (segment, time) = try source.next(segmentOf) {
                    try await session.take(segment, time: time)
                } else {
                    try? await Task.sleep(for: .milliseconds(5))
                }
            } catch let failure as PcapSource.Failure {
                try await session.record(failure, in: interface)
                break
            }
        }
        waiting.cancel()
        // What the kernel already holds (a block of frames may wait for its timeout) is read too.
        let drainUntil = ContinuousClock.now + .milliseconds(300)
        while !source.finished, ContinuousClock.now < drainUntil {
            guard let (segment, time) = try? source.next(segmentOf) else {
                try? await Task.sleep(for: .milliseconds(5))
                continue
            }
            try await session.take(segment, time: time)
        }
        try await session.finish()
        if let dropped = source.dropped, dropped > 0 {
            io.writeError("siotap sniff: the kernel dropped \(dropped) frames (the gaps they left are in the capture)\n")
        }
        io.writeError("siotap sniff: stopped\n")
    }
}
