import ArgumentParser
import FaultInjection
import Foundation
import JWTInspection
import SiotapInspector
import SocketIOProxy
import SocketIOTransport
import TrafficCapture

struct ProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Relay Socket.IO traffic to an upstream server and show (and record) every packet, decoded.",
        discussion: """
            Point your app at the proxy instead of the server. Polling and WebSocket traffic, and the \
            upgrade between them, pass through unchanged; each Engine.IO session is one conn. The live \
            view shows a line per packet on a terminal, capture records as JSON lines when the output \
            is piped or redirected (--format text|json chooses); --record writes them \
            to a JSONL file (capture format v1) as they happen.

            Known failures (sticky sessions missing, an upgrade dropped, an idle timeout below the \
            heartbeat, an expired token, …) are diagnosed as they show: a diagnosis record with \
            the fix, shown whatever --filter says, and summed up when the proxy stops \
            (docs/diagnoses.md; siotap diagnose works them out from any capture).

            permessage-deflate is not negotiated: the proxy removes the offer, so frames are readable. \
            Connections are kept alive on both sides. The proxy runs one event loop thread per core; \
            NIO_SINGLETON_GROUP_LOOP_COUNT=N sets how many.

            --tls serves HTTPS and WSS (see siotap ca for the CA clients must trust); an https:// \
            upstream is verified (--upstream-ca, or --insecure). With SSLKEYLOGFILE set, the TLS \
            secrets of both sides are appended there for Wireshark.

            --mode forward makes siotap an HTTP proxy for any host (set HTTPS_PROXY, or a browser's \
            proxy setting, to it): CONNECT tunnels are intercepted with certificates minted by the \
            local CA for the names clients ask for (clients must trust the CA), and absolute http:// \
            requests go to their host; the real hosts are verified as an https upstream is. \
            --ignore-hosts tunnels matching hosts untouched; --allow-hosts intercepts only matching \
            ones. Both are repeatable, and are regular expressions (ICU syntax) that match when they \
            are found anywhere in "host" or in "host:port", as mitmproxy's are: anchor them with ^ and $ \
            to match a whole name. A host's verdict is worked out once and kept; a pattern that takes \
            over 10 ms on a name counts as not matching it (said once on stderr). Clients on other \
            machines are refused unless --allow-remote; theirs cannot reach this machine's loopback \
            or link-local addresses, nor siotap's own ports, unless --allow-hosts names them.

            --filter keeps the packets that match every term: event=NAME (and the acks that \
            answer it), nsp=/NS, conn=cN, type=EVENT|ACK|CONNECT|..., dir=c2s|s2c; a bare word is an \
            event name.

            --fault breaks a session on purpose (repeatable; --faults FILE.json takes a JSON array of \
            the same rules). A rule is an action, then --filter's terms (as key=value), p=PERCENT \
            (default 100) and after=DURATION (from the conn's start): delay=300ms[,jitter=50ms] holds \
            matching packets (a conn's packets keep their order); drop; disconnect=2s or disconnect \
            with terms (when a matching packet has passed), with how=close|reset; \
            refuse-connect=N,message=TEXT answers the next N CONNECTs (nsp=/ unless told) with \
            CONNECT_ERROR {"message": TEXT} without forwarding them; set=PATH:JSON and unset=PATH \
            rewrite arguments (args[0].price, data.token, event); throttle=10kB/s[,dir=s2c]. Each \
            fault is a "fault" record; --seed N repeats the p= draws. Unmatched traffic passes byte \
            for byte.

            With --ui, live conns can be acted on from the page or its HTTP API (docs/api.md, \
            under the URL's token): emit an event into a conn as the client or as the server, and \
            hold packets at breakpoints (--break, same terms as --filter) to release, edit or drop \
            them; a held packet goes on unchanged after --break-timeout. Engine.IO pings keep \
            flowing, so a held conn stays up. Each action is an "intervention" record. With --ui \
            each WebSocket message is then decided before it goes on, as with --fault.

            Exit codes: 0 stopped by SIGINT or SIGTERM (every conn closed in the capture); 1 it cannot \
            listen or cannot write the capture; 2 wrong arguments.

            Examples:
              siotap proxy --upstream http://localhost:3001 --record session.jsonl
              siotap proxy --listen 127.0.0.1:9000 --jwt-secret "$JWT_SECRET"
              siotap proxy --filter 'nsp=/admin,dir=s2c' --json | jq .
              siotap proxy --tls auto --tls-name dev.local --listen 127.0.0.1:8443
              siotap proxy --upstream https://staging.example.com --upstream-ca staging-ca.pem
              siotap proxy --mode forward --listen 127.0.0.1:8080 --ignore-hosts 'googleapis\\.com$'
              siotap proxy --record session.jsonl --ui 127.0.0.1:8081     # and open the printed URL
              siotap proxy --fault 'drop,type=ACK,dir=s2c' --fault 'delay=300ms,event=chat'
              siotap proxy --fault 'refuse-connect=1,message=jwt expired' --fault 'disconnect=10s,how=reset'
              siotap proxy --ui --break 'event=chat,dir=c2s'       # hold, edit, let go in the page
            """
    )

    @Option(help: "The Socket.IO server to forward to (default: http://127.0.0.1:3000; not with --mode forward).", transform: UpstreamURL.init)
    var upstream: UpstreamURL?

    @Option(help: "reverse: a front for one --upstream; forward: an HTTP proxy for any host (see above).")
    var mode: ProxyMode = .reverse

    @Option(name: .customLong("ignore-hosts"), help: "Forward mode: tunnel hosts in which this regular expression is found (in host or host:port) without intercepting them.")
    var ignoreHosts: [String] = []

    @Option(name: .customLong("allow-hosts"), help: "Forward mode: intercept only hosts in which this regular expression is found (in host or host:port); tunnel the others.")
    var allowHosts: [String] = []

    @Flag(name: .customLong("allow-remote"), help: "Forward mode: serve clients on other machines too.")
    var allowRemote = false

    @Option(help: "Address and port to listen on (default: 127.0.0.1:8080).", transform: ListenAddress.init)
    var listen = ListenAddress(host: "127.0.0.1", port: 8080)

    @OptionGroup(title: "Recording")
    var recording: RecordingOptions

    @OptionGroup(title: "Tokens")
    var tokens: JWTKeyOptions

    @Option(help: "Show only matching packets (see above).", transform: { text in
        do throws(CaptureFilter.Invalid) { return try CaptureFilter(text) } catch { throw ValidationError(error.description) }
    })
    var filter: CaptureFilter?

    @Option(help: "The sessions' Socket.IO parser: auto (each session's first packet tells, and its session record says msgpack), json or msgpack.")
    var parser: ParserChoice = .auto

    @Flag(
        name: .customLong("show-tunnels"),
        help: "Forward mode: show tunnels that failed before any Socket.IO traffic (a browser's background services) in the live view; they are always in the capture, as info records."
    )
    var showTunnels = false

    @Option(help: "Decode Engine.IO traffic on this path only (default: any path whose query says EIO= and transport=).")
    var path: String?

    @Option(name: .customLong("idle-timeout"), help: "Seconds without traffic before a polling conn counts as gone.")
    var idleTimeout: Double = 120

    @Option(
        name: .customLong("max-message-size"),
        help: "Largest message decoded, in bytes: a WebSocket message above it, or a binary packet whose attachments add up to more, is relayed but not decoded (an error record says so); a polling body above it is refused with 413."
    )
    var maxMessageSize = 64 << 20

    @Option(
        name: .customLong("capture-buffer"),
        help: "Records that may wait for the disk or the terminal before the proxy stops reading from its sockets until they are written (nothing is dropped)."
    )
    var captureBuffer = CaptureQueue.defaultHighWater

    @OptionGroup(title: "TLS")
    var tls: TLSOptions

    @OptionGroup(title: "Faults")
    var faults: FaultOptions

    @OptionGroup(title: "Acting on live conns")
    var intervention: InterventionOptions

    func validate() throws {
        guard maxMessageSize > 0 else { throw ValidationError("--max-message-size must be a positive number of bytes") }
        guard captureBuffer > 0 else { throw ValidationError("--capture-buffer must be a positive number of records") }
        if !intervention.breakpoints.isEmpty, recording.inspector.address == nil {
            throw ValidationError("--break needs --ui: held packets are let go from the inspector or its API (docs/api.md)")
        }
        if mode == .forward {
            if upstream != nil { throw ValidationError("--upstream is for --mode reverse: in forward mode clients say where they go") }
            if tls.tls != nil { throw ValidationError("--tls is for --mode reverse: a forward proxy is spoken to in plain HTTP (CONNECT carries the TLS)") }
        } else {
            if !ignoreHosts.isEmpty || !allowHosts.isEmpty || allowRemote {
                throw ValidationError("--ignore-hosts, --allow-hosts and --allow-remote are for --mode forward")
            }
            if !(upstream?.tls ?? false), tls.upstreamCA != nil || tls.insecure {
                throw ValidationError("--upstream-ca and --insecure are for an https:// upstream")
            }
        }
    }

    func run() async throws {
        let io = CommandIO.current
        let forwardMode = mode == .forward
        let intercepts = try HostPatterns(ignore: ignoreHosts, allow: allowHosts) { pattern in
            io.writeError("siotap proxy: the host pattern '\(pattern)' took over 10 ms on a host name and counts as not matching there; simplify it (nested repeats such as (a+)+ backtrack)\n")
        }
        let faultPlan = try faults.plan()
        let listenAddress = listen
        let upstreamAddress = upstream ?? UpstreamURL(host: "127.0.0.1", port: 3000)
        let key = try tokens.key()
        let tlsSettings = try tls.serving(io: io)
        let upstreamTLS = forwardMode ? nil : try tls.upstream(upstreamAddress, io: io)
        let forward = try forwardMode
            ? tls.forward(intercepts: { intercepts.intercepts($0, $1) }, explicitlyAllowed: { intercepts.allowsExplicitly($0, $1) }, io: io) : nil
        let recordFilter = filter ?? CaptureFilter()
        let recording = try self.recording.recording(command: "proxy", io: io, shows: { [showTunnels] record, answering in
                // A diagnosis is rare and is the point, an intervention the user's own doing: shown whatever the filter.
                record.kind == .diagnosis || record.kind == .intervention || ((showTunnels || record.kind != .info) && recordFilter.matches(record, answering: answering))
            }, highWater: captureBuffer)
        var configuration = ProxyConfiguration(
            listenHost: listenAddress.host, listenPort: listenAddress.port, upstreamHost: upstreamAddress.host,
            upstreamPort: upstreamAddress.port, path: path, jwtKey: key, jwtLeeway: tokens.leeway, maxMessageSize: maxMessageSize,
            idleTimeout: idleTimeout, tls: tlsSettings, upstreamTLS: upstreamTLS, forward: forward?.settings, allowRemote: allowRemote,
            faults: faultPlan, parser: parser.parser
        )
        configuration.intervention = intervention.settings(inspector: self.recording.inspector.address != nil)
        let proxy = SocketIOProxy(configuration: configuration, recordingInto: recording.queue)
        let signals = SignalWaiter()
        let port: Int
        do { port = try await proxy.start() } catch { throw CommandFailure("cannot listen on \(listen): \(SocketErrorText.describe(error))") }
        var inspectorServer: InspectorServer?
        if let address = self.recording.inspector.address, let feed = recording.feed {
            inspectorServer = try await InspectorOptions.start(at: address, allowRemote: self.recording.inspector.allowRemote, feed: feed, control: proxy)
            inspectorServer.map { proxy.addOwnPort($0.port) }
        }
        let said = (self.recording.record.map { ", recording to \($0)" } ?? "") + (inspectorServer.map { ", inspector at \($0.url)" } ?? "")
            + (faultPlan.map { ", \($0.rules.count) fault rule\($0.rules.count == 1 ? "" : "s") (--seed \($0.seed))" } ?? "")
            + (intervention.breakpoints.isEmpty ? "" : ", \(intervention.breakpoints.count) breakpoint\(intervention.breakpoints.count == 1 ? "" : "s")")
        if let forward {
            io.writeError("siotap proxy: forward proxy on http://\(listenAddress.host):\(port) (clients must trust \(forward.caFile))"
                + (tls.insecure ? "; the hosts' certificates NOT verified: --insecure" : "") + said + "\n")
        } else {
            io.writeError("siotap proxy: listening on \(proxy.configuration.listenScheme)://\(listenAddress.host):\(port), forwarding to \(upstreamAddress.description)"
                + (tls.insecure && upstreamAddress.tls ? " (its certificate NOT verified: --insecure)" : "") + said + "\n")
        }
        // An upstream that takes no connection is said at once, not at the first client's 502 (a
        // connection opened and closed: the server sees no request). The proxy runs anyway: the
        // server may be on its way up. Short, so that a Ctrl-C right after the start is not held
        // up by a host that drops the connection attempt.
        async let checked: Void = {
            guard forward == nil else { return }
            do {
                try await TunnelHandler.probe(host: upstreamAddress.host, port: upstreamAddress.port, timeoutSeconds: 3)
            } catch {
                io.writeError("siotap proxy: warning: \(upstreamAddress) takes no connection (\(SocketErrorText.describe(error))); clients get a 502 until it does\n")
            }
        }()
        await signals.wait()
        await checked
        await inspectorServer?.stop()
        await proxy.shutdown()
        recording.finish()
        io.writeError(DiagnoseCommand.stopSummary(recording.diagnoses, command: "proxy"))
        let tunnels = recording.infos
        io.writeError("siotap proxy: stopped" + (tunnels == 0 || showTunnels ? "" :
            " (\(tunnels) tunnel\(tunnels == 1 ? "" : "s") failed before any Socket.IO traffic: info records in the capture; --show-tunnels shows them)") + "\n")
    }
}

enum ProxyMode: String, ExpressibleByArgument, CaseIterable {
    case reverse, forward
}
