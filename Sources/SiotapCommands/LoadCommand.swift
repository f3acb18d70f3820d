#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import Histogram
import LoadGeneration
import SocketIOServer
import Synchronization
import SocketIOProtocol
import TrafficCapture
import TrafficReplay
import TransportCore

/// `siotap load`: a capture played as many virtual users (`siotap load CAPTURE…`), and the logs of
/// several workers added up (`siotap load merge`).
struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Play captured sessions as many virtual users against a server, timing every ack and every event they cause.",
        discussion: """
            siotap load CAPTURE… --target URL --users N plays a capture as N users (siotap load run \
            --help says every option); siotap load merge adds up the logs of several workers.
            """,
        subcommands: [LoadRunCommand.self, LoadMergeCommand.self],
        defaultSubcommand: LoadRunCommand.self
    )
}

struct LoadRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Play captured sessions as many virtual users against a server (the default: siotap load CAPTURE…).",
        discussion: """
            Each virtual user plays one conn of the capture (round robin over its conns, or those \
            --pick keeps): its transports, namespaces and packets, at their recorded times \
            (--speed 2 halves the think times; --loop starts the conn again until --duration). \
            --ramp spreads the users' starts (--rate N starts N a second instead). With --jwt-secret or --jwt-key each user's tokens \
            are re-minted (times shifted to now), with --claim NAME=VALUE set in them ({user} is the \
            user's number, 0, 1, 2...: --claim 'id={user}' makes each user another).

            Timed, in HdrHistograms (microsecond resolution): each ack from its emit, each server \
            event the capture shows after a client packet (before the conn's next one) from that \
            packet, the session's set-up (open to the first namespace's answer). Errors: \
            connect_failed, refused (a CONNECT_ERROR), ack_timeout and event_timeout (--timeout), \
            disconnected. A progress line each second on a terminal; the table at the end, or \
            --json's object; --fail-if 'p99>200ms,errors>0.1%' exits 1 when broken (metrics p50, \
            p90, p99, p999, max over every latency, connect_p50, connect_p99, connect_max; errors as \
            a count or a percentage of the sessions, acks and events waited for).

            On several machines: --workers K --worker-index I plays the users whose number is I \
            modulo K (each worker given the same --users, the whole run's), at the times one \
            process would; --hlog FILE writes the worker's histograms as an HdrHistogram interval \
            log; siotap load merge *.hlog adds them up into one report (docs/load.md).

            Exit codes: 0 done (and --fail-if held); 1 --fail-if broken; 2 wrong arguments or an \
            unreadable capture; 3 the target cannot be reached.

            Examples:
              siotap load chat.jsonl --target http://localhost:3001 --users 200 --jwt-secret "$JWT_SECRET" --claim 'id={user}'
              siotap load session.jsonl --target http://localhost:3001 --users 5000 --ramp 60s --duration 5m --loop --speed 2
              siotap load session.jsonl --target http://staging:3001 --users 500 --json --fail-if 'p99>250ms,errors>0.5%'
            """
    )

    @Argument(help: "The captures to play (their conns are taken together).")
    var captures: [String]

    @Option(help: "The server (http://HOST:PORT, or with its Engine.IO path); each conn uses its recorded path otherwise.", transform: UpstreamURL.init)
    var target: UpstreamURL

    @Option(help: "Virtual users.")
    var users = 1

    @Option(help: "Spread the users' starts over this time (30s, 2m).", transform: LoadRunCommand.duration)
    var ramp: Double = 0

    @Option(help: "Start this many users a second (instead of --ramp): user N starts at N/RATE s.")
    var rate: Double?

    @Option(help: "Stop after this time (users still playing are ended); by default when every user is done.", transform: LoadRunCommand.duration)
    var duration: Double?

    @Option(help: "Divide the recorded think times by this.")
    var speed = 1.0

    @Flag(help: "Start each user's conn again when it ends, until --duration.")
    var loop = false

    @Option(help: "Play only the conns with a packet these --filter terms keep (event=checkout).")
    var pick: String?

    @Option(help: "How long to wait for an ack or an expected event (10s).", transform: LoadRunCommand.duration)
    var timeout: Double = 10

    @Option(name: .customLong("jwt-secret"), help: "Re-mint each user's tokens with this secret.")
    var jwtSecret: String?

    @Option(name: .customLong("jwt-key"), help: "Re-mint each user's tokens with this PEM private key.")
    var jwtKey: String?

    @Option(name: .customLong("claim"), help: "A claim each user's tokens get: NAME=VALUE, {user} the user's number (repeatable; needs --jwt-secret or --jwt-key).")
    var claims: [String] = []

    @Option(name: .customLong("fail-if"), help: "Exit 1 when any of these holds: p99>200ms,errors>0.1% (see above).")
    var failIf: String?

    @Option(name: .customLong("upstream-ca"), help: "PEM file of the CA(s) to trust for an https --target.")
    var upstreamCA: String?

    @Flag(help: "Do not verify an https --target's certificate.")
    var insecure = false

    @Flag(help: "Print the results as one JSON object.")
    var json = false

    @Flag(help: "No progress line.")
    var quiet = false

    @Option(help: "How many workers share the users (see above).")
    var workers = 1

    @Option(name: .customLong("worker-index"), help: "Which of the --workers this is, from 0.")
    var workerIndex = 0

    @Option(help: "Also write the histograms as an HdrHistogram interval log (.hlog) to this file.")
    var hlog: String?

    @Option(help: "Also write a report to this HTML file: latency percentiles, throughput, users and errors over time, and the tables (one file, nothing fetched).")
    var report: String?

    static func duration(_ text: String) throws -> Double {
        for (unit, scale) in [("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)] where text.hasSuffix(unit) {
            if let value = Double(text.dropLast(unit.count)), value >= 0 { return value * scale }
        }
        if let value = Double(text), value >= 0 { return value }
        throw ValidationError("\(text) is not a duration (500ms, 30s, 5m, 1h)")
    }

    func validate() throws {
        guard users > 0 else { throw ValidationError("--users must be at least 1") }
        guard speed > 0 else { throw ValidationError("--speed must be more than 0") }
        if let rate {
            guard rate > 0 else { throw ValidationError("--rate must be more than 0 users a second") }
            if ramp > 0 { throw ValidationError("--rate or --ramp, not both: each says when the users start") }
        }
        guard workers >= 1, (0..<workers).contains(workerIndex) else { throw ValidationError("--worker-index must be from 0 to --workers - 1") }
        if loop, duration == nil { throw ValidationError("--loop needs --duration: the users would play for ever") }
        if jwtSecret != nil, jwtKey != nil { throw ValidationError("Give --jwt-secret or --jwt-key, not both.") }
        if !claims.isEmpty, jwtSecret == nil, jwtKey == nil { throw ValidationError("--claim needs --jwt-secret or --jwt-key: the tokens are re-minted with it") }
        for claim in claims {
            do { _ = try ClaimTemplate(claim) } catch { throw ValidationError("--claim \(error.description)") }
        }
        if let failIf {
            do { _ = try FailCondition(failIf) } catch { throw ValidationError("--fail-if \(error.description)") }
        }
        if let pick {
            do { _ = try CaptureFilter(pick) } catch { throw ValidationError("--pick \(error.description)") }
        }
    }

    func run() async throws {
        let io = CommandIO.current
        var records: [CaptureRecord] = []
        for capture in captures {
            do {
                let read = try CaptureReader.readAll(path: capture)
                for problem in read.problems { io.writeError("siotap load: \(capture): \(problem)\n") }
                // Conns of several captures stay apart: each file's are its own.
                records += captures.count == 1 ? read.records : read.records.map { record in
                    var record = record
                    record.conn = record.conn.map { "\(capture)#\($0)" }
                    return record
                }
            } catch {
                throw CommandFailure(.badInput, "\(error)")
            }
        }
        let tls = try TLSOptions.upstream(target, caFile: upstreamCA, insecure: insecure, io: io)
        var tokenKey: TokenRefresher.Key? = jwtSecret.map(TokenRefresher.Key.secret)
        if let jwtKey {
            guard let data = FileManager.default.contents(atPath: jwtKey) else { throw CommandFailure(.badInput, "--jwt-key: cannot read \(jwtKey)") }
            tokenKey = .pem(String(decoding: data, as: UTF8.self))
            do { try TokenRefresher.check(tokenKey!) } catch { throw CommandFailure(.badInput, "--jwt-key \(jwtKey): \(error)") }
        }
        let server = try await TargetServer(target: target, tls: tls, configuration: .init()) { _ in }
        do { try await server.reachable() } catch {
            throw CommandFailure(.unreachable, "could not reach \(target): \(error.detail); no user was started")
        }
        raiseOpenFileLimit(io: io)
        var options = LoadOptions(
            host: server.host, port: server.port, path: server.path, tls: tls, users: users, ramp: ramp, duration: duration, speed: speed, loop: loop,
            timeout: timeout, tokenKey: tokenKey, claims: try claims.map { try ClaimTemplate($0) }, pick: try pick.map { try CaptureFilter($0) }
        )
        options.worker = (workerIndex, workers)
        options.rate = rate
        let startedAt = CaptureClock.secondsSince1970()
        let metrics = LoadMetrics()
        let baseline = LoadMetrics.memory().current
        // The server's CPU too, when it is a process of this machine (which side saturated).
        let serverPID = ["127.0.0.1", "localhost", "::1", "[::1]"].contains(server.host) || server.host.hasPrefix("127.") ? ProcessCPU.listener(port: server.port) : nil
        let cpuBefore = (load: ProcessCPU.seconds(of: ProcessCPU.current) ?? 0, server: serverPID.flatMap(ProcessCPU.seconds(of:)))
        let start = ContinuousClock.now
        io.writeError("siotap load: \(users) user\(users == 1 ? "" : "s") against \(target)\(ramp > 0 ? ", started over \(ramp) s" : "")"
            + (duration.map { " for \($0) s" } ?? "") + (workers > 1 ? ", as worker \(workerIndex) of \(workers)" : "") + "\n")
        let showsProgress = !quiet && isatty(STDERR_FILENO) != 0
        // Each second: the progress line, and a sample for the report's plots.
        let samples = Mutex<[LoadSample]>([])
        let progress = Task {
            var last = 0
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                guard !Task.isCancelled else { break }
                let snapshot = metrics.snapshot
                let recent = metrics.takeRecent()
                let measured = Int(snapshot.all.totalCount)
                let elapsed = ContinuousClock.now - start
                samples.withLock {
                    $0.append(LoadSample(
                        time: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18, connected: snapshot.connected,
                        timed: measured - last, p50: recent.totalCount > 0 ? Double(recent.valueAtPercentile(50)) / 1000 : nil,
                        p99: recent.totalCount > 0 ? Double(recent.valueAtPercentile(99)) / 1000 : nil, errors: snapshot.errorCount
                    ))
                }
                guard showsProgress else {
                    last = measured
                    continue
                }
                let line = "\(snapshot.connected) connected of \(snapshot.started) started, \(measured - last) timed/s"
                    + (recent.totalCount > 0 ? ", p50 \(Self.ms(recent.valueAtPercentile(50))) p99 \(Self.ms(recent.valueAtPercentile(99))) ms" : "")
                    + ", \(snapshot.errorCount) error\(snapshot.errorCount == 1 ? "" : "s")"
                io.writeError("\r\u{1B}[2K" + line)
                last = measured
            }
        }
        do {
            try await LoadRunner.run(records, options: options, metrics: metrics)
        } catch {
            progress.cancel()
            throw CommandFailure(.badInput, error.description)
        }
        progress.cancel()
        if showsProgress { io.writeError("\r\u{1B}[2K") }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let snapshot = metrics.snapshot
        let memory = (peakKB: LoadMetrics.memory().peak, baselineKB: baseline)
        let broken = try failIf.map { try FailCondition($0) }?.broken(by: snapshot) ?? []
        let serverSeconds = serverPID.flatMap(ProcessCPU.seconds(of:)).flatMap { after in cpuBefore.server.map { after - $0 } }
        let cpu = CPUUse(
            load: ((ProcessCPU.seconds(of: ProcessCPU.current) ?? 0) - cpuBefore.load) / max(seconds, 0.001),
            server: serverSeconds.map { $0 / max(seconds, 0.001) }, serverPID: serverSeconds == nil ? nil : serverPID, machineCores: ProcessCPU.cores
        )
        if let report {
            let title = "siotap load: \(captures.joined(separator: ", ")), \(users) users against \(target)"
            let page = LoadReport.html(snapshot, samples: samples.withLock { $0 }, duration: seconds, memory: memory, title: title, broken: broken)
            do { try page.write(toFile: report, atomically: true, encoding: .utf8) } catch { throw CommandFailure("cannot write \(report): \(error)") }
        }
        if let hlog {
            let text = HistogramLog.write(snapshot, start: startedAt, duration: seconds, memory: memory, worker: "worker \(workerIndex) of \(workers)")
            do { try text.write(toFile: hlog, atomically: true, encoding: .utf8) } catch { throw CommandFailure("cannot write \(hlog): \(error)") }
        }
        if json {
            io.write(LoadReport.json(snapshot, duration: seconds, memory: memory, broken: broken, cpu: cpu).jsonText + "\n")
        } else {
            io.write(LoadReport.table(snapshot, duration: seconds, memory: memory, cpu: cpu))
        }
        await server.stop()
        if !broken.isEmpty {
            io.writeError("siotap load: --fail-if broken: \(broken.joined(separator: ", "))\n")
            throw ExitCode(SiotapCLI.Exit.checkFailed)
        }
    }

    static func ms(_ micros: UInt64) -> String {
        let value = (Double(micros) / 10).rounded() / 100
        return value == value.rounded() ? String(Int(value)) : String(value)
    }

    /// Each user holds a socket: the soft limit on open files goes up to the hard one.
    private func raiseOpenFileLimit(io: CommandIO) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        if UInt64(users) + 64 > UInt64(limit.rlim_cur) {
            io.writeError("siotap load: warning: \(users) users need more sockets than the open-file limit (\(limit.rlim_cur)) allows\n")
        }
    }
}

/// `siotap load merge`: the workers' interval logs as one run's report.
struct LoadMergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Add up the HdrHistogram logs of several siotap load workers (--hlog) into one report.",
        discussion: """
            Histograms with the same tag are added (as HdrHistogram adds them), the workers' \
            counters summed. Exit codes: 0 done (and --fail-if held); 1 --fail-if broken; 2 a file \
            that is not such a log.

            Examples:
              siotap load merge worker-*.hlog
              siotap load merge worker-*.hlog --json --fail-if 'p99>200ms'
            """
    )

    @Argument(help: "The workers' .hlog files.")
    var logs: [String]

    @Flag(help: "Print the results as one JSON object.")
    var json = false

    @Option(name: .customLong("fail-if"), help: "Exit 1 when any of these holds (as siotap load's).")
    var failIf: String?

    func validate() throws {
        if let failIf {
            do { _ = try FailCondition(failIf) } catch { throw ValidationError("--fail-if \(error.description)") }
        }
    }

    func run() throws {
        let io = CommandIO.current
        var texts: [(name: String, text: String)] = []
        // A worker's log is kilobytes; a file far larger (or endless, like a device) is not one.
        let largest = 64 << 20
        for path in logs {
            guard let file = FileHandle(forReadingAtPath: path), let data = try? file.read(upToCount: largest + 1) ?? Data() else {
                throw CommandFailure(.badInput, "cannot read \(path)")
            }
            try? file.close()
            guard data.count <= largest else { throw CommandFailure(.badInput, "\(path): larger than 64 MB, not a worker's log") }
            texts.append((path, String(decoding: data, as: UTF8.self)))
        }
        let merged: HistogramLog.Merged
        do { merged = try HistogramLog.merge(texts) } catch { throw CommandFailure(.badInput, error.description) }
        let broken = try failIf.map { try FailCondition($0) }?.broken(by: merged.snapshot) ?? []
        if json {
            io.write(LoadReport.json(merged.snapshot, duration: merged.duration, memory: merged.memory, broken: broken).jsonText + "\n")
        } else {
            io.write("merged \(merged.files) log\(merged.files == 1 ? "" : "s")\n" + LoadReport.table(merged.snapshot, duration: merged.duration, memory: merged.memory))
        }
        if !broken.isEmpty {
            io.writeError("siotap load merge: --fail-if broken: \(broken.joined(separator: ", "))\n")
            throw ExitCode(SiotapCLI.Exit.checkFailed)
        }
    }
}
