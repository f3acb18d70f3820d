import FaultInjection
import JWTInspection
import NIOCore
import NIOHTTP1
import SocketIOTransport
import Synchronization
public import TrafficCapture

/// The man in the middle: relays HTTP long-polling and WebSocket traffic between Socket.IO
/// clients and an upstream server, unchanged, and reports what it decodes on the way.
///
/// Decoding only observes: bytes are forwarded as they came, and a frame that fails to decode is
/// reported as an `error` record while it still goes through.
public final class SocketIOProxy: Sendable {
    /// Takes a record and, when it is not now, the time it happened (seconds since 1970: the
    /// proxy observes frames off the loops, a few milliseconds later); returns the `seq` it will
    /// have (0 when unknown).
    public typealias Sink = @Sendable (_ body: CaptureRecord.Body, _ conn: String?, _ time: Double?) -> Int

    public let configuration: ProxyConfiguration
    /// Asked before reading more from clients and upstreams: the observation or the capture may be behind.
    let readGate: ReadGate?
    let tracker: ConnectionTracker
    let inspector: JWTInspector
    /// Reverse mode's upstream; forward mode's are made as clients ask for hosts.
    let reverseUpstream: ProxyUpstream
    let upstreams = Mutex<[String: ProxyUpstream]>([:])
    /// What runs while the proxy serves (see SocketIOProxy+Lifecycle.swift).
    let running = Mutex(Running())
    /// Tokens to inspect, in the order they were seen, and the one task that inspects them.
    let inspections: AsyncStream<TokenInspection>.Continuation
    let inspecting: Task<Void, Never>
    private let ownPortSet = Mutex<Set<Int>>([])
    /// This machine's addresses, for forward mode's remote clients (read once, at start).
    let machineAddresses: Set<String>
    /// The breakpoints, when live conns can be acted on (``ProxyConfiguration/intervention``).
    let breakpointsSet: BreakpointTable?

    /// - Parameter readGate: when the records' consumer falls behind (see
    ///   ``CaptureQueue/admit(orResume:)``), the proxy stops reading until it catches up.
    public init(configuration: ProxyConfiguration, readGate: ReadGate? = nil, sink: @escaping Sink) {
        self.configuration = configuration
        let (queued, inspections) = AsyncStream.makeStream(of: TokenInspection.self)
        self.inspections = inspections
        // Acting on live conns takes the fault path (each packet decided before it goes on), with
        // no rules when none were given; without, frames are observed off the loops, in order.
        let faults = configuration.faults ?? (configuration.intervention != nil ? FaultPlan(rules: [], seed: 0) : nil)
        let tracker = ConnectionTracker(
            faults: faults, parser: configuration.parser, maxAttachmentBytes: configuration.maxMessageSize, ordered: faults == nil,
            inspect: { inspections.yield($0) }, sink: sink
        )
        self.tracker = tracker
        if let ordered = tracker.ordered {
            self.readGate = { resume in ordered.admit(orResume: resume) && readGate?(resume) ?? true }
        } else {
            self.readGate = readGate
        }
        breakpointsSet = configuration.intervention.map { settings in
            let table = BreakpointTable()
            for filter in settings.breakpoints { _ = try? table.add(filter, by: .cli) }
            return table
        }
        inspector = JWTInspector(key: configuration.jwtKey, leewaySeconds: configuration.jwtLeeway)
        reverseUpstream = ProxyUpstream(host: configuration.upstreamHost, port: configuration.upstreamPort, tls: configuration.upstreamTLS)
        machineAddresses = configuration.forward != nil && configuration.allowRemote ? ForwardAccess.machineAddresses() : []
        // Holds the tracker and inspector, not the proxy, which stays free to go.
        inspecting = Task { [tracker, inspector] in await Self.runInspections(queued, inspector: inspector, tracker: tracker) }
    }

    deinit {
        inspections.finish()
    }

    /// siotap's own listening ports (the proxy's, the inspector's): not to be reached through the
    /// proxy by clients on other machines.
    var ownPorts: Set<Int> { ownPortSet.withLock { $0 } }

    /// Tells the proxy of another port siotap listens on (the inspector's).
    public func addOwnPort(_ port: Int) {
        _ = ownPortSet.withLock { $0.insert(port) }
    }

    /// A forward-mode host's upstream, with its pool, made the first time it is asked for;
    /// `address`: dialled instead of the name (which TLS still checks), when one was pinned.
    func upstream(host: String, port: Int, tls: Bool, address: String? = nil) throws -> ProxyUpstream {
        let key = "\(tls ? "https" : "http")://\(Authority.text(host: host, port: port))" + (address.map { "@" + $0 } ?? "")
        if let known = upstreams.withLock({ $0[key] }) { return known }
        let settings = try configuration.forward.flatMap { forward in
            tls ? try TLSClientSettings(trust: forward.upstreamTrust, serverName: host, keyLogPath: forward.keyLogPath) : nil
        }
        let made = ProxyUpstream(host: address ?? host, port: port, tls: settings)
        return upstreams.withLock { upstreams in
            if let raced = upstreams[key] { return raced }
            upstreams[key] = made
            return made
        }
    }

    /// The 502 for an upstream siotap could not even set up.
    func cannotReach(_ error: any Error) -> HTTPResponse {
        HTTPResponse(
            status: .badGateway, headers: ["Content-Type": "text/plain; charset=utf-8"],
            body: Array("siotap proxy: cannot set up the upstream: \(error)\n".utf8), closeConnection: true
        )
    }
}

/// The conn a relay carries, known once the client's side is attached.
final class RelayedConnection: Sendable {
    let connection = Mutex<ProxyConnection?>(nil)
}
