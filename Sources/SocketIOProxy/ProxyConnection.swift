import FaultInjection
import LiveIntervention
import SocketIOProtocol
import NIOCore
import SocketIOTransport
import Synchronization
import TrafficCapture
import TrafficObservation

/// One conn through the proxy (an Engine.IO session, kept across the polling-to-websocket
/// upgrade): where it goes, fixed when it opens, and under its own lock its recorder, its fault
/// state and what its end waits for. ``ConnectionTracker`` files conns by sid and writes their
/// records.
final class ProxyConnection: Sendable {
    let id: String
    let engineVersion: EngineIOVersion
    /// The server the conn's requests go to: reverse mode's upstream, or in forward mode the host
    /// its first request named. A cut tells this one that the session is over.
    let upstream: ProxyUpstream
    /// Its Engine.IO path (`/socket.io/`), for requests the proxy makes in its name.
    let path: String
    let state: Mutex<State>

    struct State {
        /// Its observation, held records, requests in flight and end: what import's recorder decides too.
        var recorder: ConnectionRecorder
        /// A WebSocket carries this conn now: its own end closes the conn, not the sweep.
        var onWebSocket = false
        /// When traffic last went through (seconds since 1970), for the idle sweep.
        var lastSeen = CaptureClock.secondsSince1970()
        /// With `--fault`: the rules' decisions for this conn, and its polling side's state.
        var faults: ConnectionFaults?
        var polling = PollingFaults<EventLoopPromise<HTTPResponse>>()
        /// Cuts the WebSocket carrying the conn (a timed disconnect after the upgrade).
        var cutWebSocket: (@Sendable (ConnectionCut) -> Void)?
        /// Live intervention: what breakpoints hold, the proxy's emits waiting for answers.
        var gate = ConnectionGate()
        /// The WebSocket relay carrying the conn, for messages of the proxy's own.
        var relay: WebSocketRelay.Control?
        /// Whoever waits for the answer to an emit of the proxy's, by ack id.
        var answerWaiters: [UInt64: @Sendable ([JSONValue]?) -> Void] = [:]
        /// The last POST to the upstream in this session, answered or not: the next waits for it
        /// (Engine.IO servers refuse a POST while another is being read).
        var lastPost: EventLoopFuture<Void>?
        /// The client's `Cookie` on its last poll, for the proxy's own POSTs (sticky sessions).
        var cookie: String?
    }

    /// `closed`: a conn that records nothing (one that comes after the proxy stopped).
    init(
        id: String, engineVersion: EngineIOVersion, upstream: ProxyUpstream, path: String, closed: Bool = false, faults: FaultPlan? = nil,
        parser: SocketIOParser? = nil, maxAttachmentBytes: Int = SocketIOCodec.defaultMaxAttachmentBytes
    ) {
        self.id = id
        self.engineVersion = engineVersion
        self.upstream = upstream
        self.path = path
        var state = State(recorder: ConnectionRecorder(engineVersion: engineVersion, parser: parser, maxAttachmentBytes: maxAttachmentBytes))
        if closed { _ = state.recorder.close(CloseRecord(by: .proxy, reason: "proxy stopped"), at: 0, waitingForActivity: false) }
        state.faults = faults.map { ConnectionFaults(plan: $0, conn: id, engineVersion: engineVersion, start: CaptureClock.secondsSince1970()) }
        self.state = Mutex(state)
    }

    /// Runs `body` on the conn's fault state, under its lock (nil without `--fault`).
    func withFaults<Result: Sendable>(_ body: @Sendable (inout ConnectionFaults, inout PollingFaults<EventLoopPromise<HTTPResponse>>) -> Result) -> Result? {
        state.withLock { state in
            guard state.faults != nil else { return nil }
            return body(&state.faults!, &state.polling)
        }
    }

    var cutWebSocket: (@Sendable (ConnectionCut) -> Void)? {
        get { state.withLock { $0.cutWebSocket } }
        set { state.withLock { $0.cutWebSocket = newValue } }
    }

    var closed: Bool { state.withLock { $0.recorder.isClosed } }
    /// The session's Socket.IO parser, once known (JSON until then).
    var parser: SocketIOParser { state.withLock { $0.recorder.observation.decoder.parser ?? .json } }
    var sid: String? { state.withLock { $0.recorder.observation.sid } }
    var onWebSocket: Bool {
        get { state.withLock { $0.onWebSocket } }
        set { state.withLock { $0.onWebSocket = newValue } }
    }
}
