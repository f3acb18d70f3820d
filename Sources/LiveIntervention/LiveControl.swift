public import SocketIOProtocol
public import TrafficCapture

/// What the inspector's page and its HTTP API can do to live conns (`siotap proxy` implements
/// it): list them, emit into one, hold packets at breakpoints and let them go. Every call that
/// changes the traffic writes an ``InterventionRecord``.
public protocol LiveControl: Sendable {
    /// The conns open now.
    func liveConns() -> [LiveConn]
    /// Sends an event into a conn in a peer's name; with `ack`, waits for the answer (taken out
    /// of the stream) up to the request's timeout.
    func emit(_ request: EmitRequest, by: InterventionRecord.Actor) async throws(LiveControlError) -> EmitOutcome
    func addBreakpoint(filter: String, by: InterventionRecord.Actor) throws(LiveControlError) -> Breakpoint
    func breakpoints() -> [Breakpoint]
    /// False when there is no such breakpoint.
    func removeBreakpoint(id: String) -> Bool
    /// The packets held now, oldest first.
    func heldPackets() -> [HeldPacket]
    /// Lets a held packet go, as it came or with `args` instead of its arguments.
    func release(seq: Int, args: [JSONValue]?, by: InterventionRecord.Actor) async throws(LiveControlError)
    func drop(seq: Int, by: InterventionRecord.Actor) async throws(LiveControlError)
}

/// A conn open now, as the API lists it.
public struct LiveConn: Sendable, Hashable {
    public var conn: String
    public var transport: EngineTransport
    public var eio: EngineIOVersion
    public var parser: SocketIOParser
    /// The namespaces the client is connected to, in the order they were joined.
    public var namespaces: [String]
    public var sid: String?

    public init(conn: String, transport: EngineTransport, eio: EngineIOVersion, parser: SocketIOParser, namespaces: [String], sid: String?) {
        self.conn = conn
        self.transport = transport
        self.eio = eio
        self.parser = parser
        self.namespaces = namespaces
        self.sid = sid
    }
}

/// `POST /api/conns/{conn}/emit`.
public struct EmitRequest: Sendable, Hashable {
    public var conn: String
    /// `c2s`: to the server, as if from the client; `s2c`: to the client, as if from the server.
    public var dir: Direction
    public var nsp: String
    public var event: String
    /// Binary values as `{"$binary": "<base64>"}`.
    public var args: [JSONValue]
    public var ack: Bool
    /// How long to wait for the answer.
    public var timeout: Double

    public init(conn: String, dir: Direction, nsp: String = "/", event: String, args: [JSONValue] = [], ack: Bool = false, timeout: Double = 5) {
        self.conn = conn
        self.dir = dir
        self.nsp = nsp
        self.event = event
        self.args = args
        self.ack = ack
        self.timeout = timeout
    }

    /// The largest wait a request may ask for.
    public static let longestTimeout = 300.0
}

public struct EmitOutcome: Sendable, Hashable {
    /// The `seq` of the emit's intervention record.
    public var seq: Int
    /// The answer's arguments; nil when none was asked for, or none came in time (`timedOut`).
    public var ack: [JSONValue]?
    public var timedOut: Bool

    public init(seq: Int, ack: [JSONValue]? = nil, timedOut: Bool = false) {
        self.seq = seq
        self.ack = ack
        self.timedOut = timedOut
    }
}

public struct Breakpoint: Sendable, Hashable {
    public var id: String
    public var filter: String
    public var by: InterventionRecord.Actor

    public init(id: String, filter: String, by: InterventionRecord.Actor) {
        self.id = id
        self.filter = filter
        self.by = by
    }
}

/// A packet held by a breakpoint.
public struct HeldPacket: Sendable, Hashable {
    public var seq: Int
    public var conn: String
    public var breakpoint: String
    public var packet: PacketRecord
    /// Since when (seconds since 1970).
    public var since: Double
    /// How many packets of its direction wait behind it.
    public var waiting: Int

    public init(seq: Int, conn: String, breakpoint: String, packet: PacketRecord, since: Double, waiting: Int) {
        self.seq = seq
        self.conn = conn
        self.breakpoint = breakpoint
        self.packet = packet
        self.since = since
        self.waiting = waiting
    }
}

/// Why a call cannot be done: an HTTP status and a stable code for scripts.
public struct LiveControlError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case unknownConn = "unknown_conn"
        case connClosed = "conn_closed"
        case notConnected = "namespace_not_connected"
        case badRequest = "bad_request"
        case badFilter = "bad_filter"
        case unknownBreakpoint = "unknown_breakpoint"
        case notHeld = "not_held"
        case tooMany = "too_many"
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var status: Int {
        switch code {
        case .unknownConn, .unknownBreakpoint, .notHeld: 404
        case .connClosed, .notConnected: 409
        case .badRequest, .badFilter: 400
        case .tooMany: 429
        }
    }

    public var description: String { message }
}
