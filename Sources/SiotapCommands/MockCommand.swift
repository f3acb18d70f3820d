import ArgumentParser
import SocketIOTransport
import TrafficCapture
import TrafficReplay

struct MockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mock",
        abstract: "Play a capture's server side to real clients: a Socket.IO server that answers as recorded.",
        discussion: """
            Each new session takes the next recorded conn. A client packet that matches the next \
            recorded one (type, namespace, event, payload modulo --ignore; a CONNECT by namespace) is \
            answered with the server packets recorded after it, at their recorded delays (at most \
            --max-delay seconds); server pushes recorded before the client spoke come at their recorded \
            offsets. Acks carry the client's ids. Unmatched packets are reported on standard error; \
            with --strict they end the session.

            A capture made with siotap proxy --fault has "fault" records; the mock ignores them unless \
            --with-faults, which plays the server side as the client lived it: packets the proxy \
            dropped are not sent, rewritten ones go rewritten, delayed ones late, a refused CONNECT is \
            answered with the proxy's CONNECT_ERROR, and a cut conn is closed where it was cut.

            Exit codes: 0 stopped by SIGINT or SIGTERM; 1 it cannot listen; 2 wrong arguments or an \
            unreadable capture.

            Examples:
              siotap mock fixtures/chat-websocket.jsonl --listen 127.0.0.1:3000
              siotap mock session.jsonl --strict --ignore 'args[0].timestamp'
            """
    )

    @Argument(help: "The capture to play.")
    var capture: String

    @Option(help: "Address and port to listen on (default: 127.0.0.1:3000).", transform: ListenAddress.init)
    var listen = ListenAddress(host: "127.0.0.1", port: 3000)

    @Option(help: "A JSON path to leave out when matching client packets; repeatable.")
    var ignore: [String] = []

    @Flag(help: "End a session at its first unmatched client packet.")
    var strict = false

    @Flag(name: .customLong("with-faults"), help: "Play the capture's fault records again (see above).")
    var withFaults = false

    @Option(name: .customLong("max-delay"), help: "Longest recorded pause kept, in seconds.")
    var maxDelay: Double = 5

    func run() async throws {
        let io = CommandIO.current
        let address = listen
        let records: [CaptureRecord]
        do { records = try CaptureReader.readAll(path: capture).records } catch { throw CommandFailure(.badInput, "\(error)") }
        let mock = MockServer(records, options: .init(ignoredPaths: ignore, strict: strict, maxDelay: maxDelay, withFaults: withFaults)) { line in
            io.writeError("siotap mock: \(line)\n")
        }
        guard mock.connectionCount > 0 else { throw CommandFailure(.badInput, "\(capture) has no Socket.IO packets to play") }
        let signals = SignalWaiter()
        let port: Int
        do { port = try await mock.start(host: address.host, port: address.port) } catch {
            throw CommandFailure("cannot listen on \(listen): \(SocketErrorText.describe(error))")
        }
        io.write("siotap mock: playing \(mock.connectionCount) recorded conn(s) of \(capture) on http://\(address.host):\(port)/socket.io/\n")
        await signals.wait()
        await mock.shutdown()
    }
}
