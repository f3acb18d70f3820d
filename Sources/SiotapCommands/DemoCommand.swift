import ArgumentParser
import SiotapInspector
import JWTInspection
import SocketIOClient
import SocketIOProxy
import DemoApps
import SocketIOServer
import Synchronization
import TrafficCapture

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "See it all in one command: the chat server, the proxy in front of it, and two scripted clients.",
        discussion: """
            Starts the built-in chat server and siotap proxy on free loopback ports, then plays the seed \
            guide's story through the proxy: alice and bob connect with their tokens, say hello, chat, \
            join a room, send a notification; mallory is refused for a forged token; everyone leaves. \
            The live view shows every packet; the capture goes to demo.jsonl.

            Exit codes: 0 the story played; 1 it could not (a port, the capture file or a client \
            failed: one line on stderr says which); 2 wrong arguments.

            Examples:
              siotap demo
              siotap demo --record /tmp/demo.jsonl --json | jq -c 'select(.kind=="jwt")'
              siotap demo --ui 127.0.0.1:8081      # and open the printed URL; Ctrl-C when done
            """
    )

    @Option(help: "Where to write the capture.")
    var record = "demo.jsonl"

    @OptionGroup(title: "Output")
    var output: OutputFormatOptions

    @OptionGroup(title: "Inspector")
    var inspector: InspectorOptions

    static let secret = "siotap-demo-secret-0123456789abcdef"

    func run() async throws {
        let io = CommandIO.current
        let recording = try Recording(command: "demo", record: record, io: io, format: output.resolved(io), inspector: inspector, shows: { _, _ in true })
        let server = SocketIOServer()
        ChatApp.install(on: server, secret: Self.secret)
        let serverPort = try await server.start(host: "127.0.0.1", port: 0)
        var inspectorServer: InspectorServer?
        if let address = inspector.address, let feed = recording.feed {
            inspectorServer = try await InspectorOptions.start(at: address, allowRemote: inspector.allowRemote, feed: feed)
            io.writeError("siotap demo: the inspector is at \(inspectorServer?.url ?? "")\n")
        }
        var configuration = ProxyConfiguration(listenPort: 0, upstreamPort: serverPort, jwtKey: .secret(Self.secret))
        configuration.builtInApp = DemoApp.chat.rawValue
        let proxy = SocketIOProxy(configuration: configuration, recordingInto: recording.queue)
        let proxyPort = try await proxy.start()
        io.writeError("siotap demo: chat server on http://127.0.0.1:\(serverPort), proxy on http://127.0.0.1:\(proxyPort), recording to \(record)\n")

        do {
            try await Self.story(proxyPort: proxyPort)
        } catch {
            io.writeError("siotap demo: the story stopped: \(error)\n")
        }
        try? await Task.sleep(for: .milliseconds(200))
        await proxy.shutdown()
        await server.shutdown()
        recording.finish()
        io.writeError("siotap demo: wrote \(recording.queue.added) records to \(record) (\(recording.packets) packets, \(recording.tokens) tokens)\n")
        io.writeError(DiagnoseCommand.stopSummary(recording.diagnoses, command: "demo"))
        if let inspectorServer {
            // Caught before it is announced: a Ctrl-C right after the line is not fatal.
            let signals = SignalWaiter()
            io.writeError("siotap demo: the inspector stays at \(inspectorServer.url); Ctrl-C stops\n")
            await signals.wait()
            await inspectorServer.stop()
        }
    }

    static func token(_ claims: JSONValue) -> String {
        JWTMinter.hmac(claims: claims, secret: secret)
    }

    private static func story(proxyPort: Int) async throws {
        let now = Int(CaptureClock.secondsSince1970())
        let alice = DemoPeer(port: proxyPort)
        let bob = DemoPeer(port: proxyPort)
        try await alice.join(token: token(.object(["id": 1, "name": "alice", "rooms": ["vip"], "iat": .number(now), "exp": .number(now + 3600)])))
        try await bob.join(token: token(.object(["id": 2, "name": "bob", "iat": .number(now), "exp": .number(now + 3600)])))

        alice.client.emit("user connection", [1])
        try await bob.waitFor("user connection")
        alice.client.emit("message", [.object(["message": "Hello from the demo", "sender": "alice"])])
        try await alice.waitFor("chat response")
        try await bob.waitFor("message")
        alice.client.emit("joinRoom", ["vip"])
        try await alice.waitFor("roomJoined")
        bob.client.emit("notify", [.object(["to": 1, "message": "Meeting in 5"])])
        try await alice.waitFor("notification")

        let mallory = DemoPeer(port: proxyPort)
        let forged = JWTMinter.hmac(claims: .object(["id": 666, "name": "mallory", "exp": .number(now + 3600)]), secret: "not-the-secret")
        try? await mallory.join(token: forged)
        mallory.client.close()

        bob.client.emit("user disconnected", ["bob"])
        try await alice.waitFor("user disconnected")
        alice.client.disconnect()
        try? await Task.sleep(for: .milliseconds(100))
        alice.client.close()
        bob.client.close()
    }
}

/// A scripted client that remembers what it received.
private final class DemoPeer: Sendable {
    let client: SocketIOClient
    private let received = Mutex<[String]>([])

    init(port: Int) {
        client = SocketIOClient(host: "127.0.0.1", port: port)
        Task { [weak self, client] in
            for await event in client.events { self?.received.withLock { $0.append(event.name) } }
        }
    }

    struct Refused: Error, CustomStringConvertible {
        let description: String
    }

    func join(token: String) async throws {
        try await client.open()
        if case .refused(let why) = await client.connect(auth: .object(["token": .string(token)])) {
            throw Refused(description: why?.jsonText ?? "refused")
        }
    }

    func waitFor(_ event: String, timeout milliseconds: Int = 3_000) async throws {
        for _ in 0..<(milliseconds / 10) {
            if received.withLock({ $0.contains(event) }) { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw Refused(description: "no \(event) within \(milliseconds) ms")
    }
}
