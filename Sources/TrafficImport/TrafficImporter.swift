public import SocketIOProtocol

/// Captured TCP segments, in capture order, to Engine.IO records: each TCP connection reassembled
/// (``TCPReassembler``), read as HTTP and WebSocket (``HTTPConversation``), and its sessions joined
/// across connections (``SessionAssembler``). Memory follows the connections open at a time: a
/// connection's state goes once both its sides have ended. Pure.
public struct TrafficImporter {
    /// A class: changed in place where it is kept (moving a struct this size out of the
    /// dictionary and back for every segment showed in profiles).
    private final class Connection {
        var reassembler: TCPReassembler
        var conversation: HTTPConversation
        let number: Int
        var ended: Set<TCPReassembler.Side> = []
        /// The flow as last worked out, and for which client side: made once, not per event.
        var flow: (client: TCPReassembler.Side, flow: SessionAssembler.Flow)?

        init(reassembler: TCPReassembler, conversation: HTTPConversation, number: Int) {
            self.reassembler = reassembler
            self.conversation = conversation
            self.number = number
        }

        func currentFlow() -> SessionAssembler.Flow {
            // Known once the client's first bytes are (which may be in this very event).
            let client = conversation.clientSide ?? .initiator
            if let flow, flow.client == client { return flow.flow }
            let made = SessionAssembler.Flow(
                client: client == .initiator ? reassembler.initiator : reassembler.responder,
                server: client == .initiator ? reassembler.responder : reassembler.initiator,
                number: number
            )
            flow = (client, made)
            return made
        }
    }

    /// The two ends of a TCP connection, in a fixed order whoever sends.
    private struct Key: Hashable, Sendable {
        var low: Endpoint
        var high: Endpoint

        init(_ a: Endpoint, _ b: Endpoint) {
            (low, high) = a < b ? (a, b) : (b, a)
        }
    }

    private var connections: [Key: Connection] = [:]
    private var assembler: SessionAssembler
    /// Only connections with one of these ports are read (all when empty).
    private let ports: Set<UInt16>
    /// What all connections may inflate together.
    public let budget: InflationBudget

    public private(set) var segments = 0
    public private(set) var tcpConnections = 0
    public private(set) var gaps = 0

    /// - Parameter parser: the sessions' Socket.IO parser when known; nil: each session's first packet tells.
    /// - Parameter budget: what the import may inflate in all (``InflationBudget/forFile(ofSize:)``).
    public init(path: String? = nil, parser: SocketIOParser? = nil, ports: Set<UInt16> = [], budget: InflationBudget = .unlimited) {
        assembler = SessionAssembler(path: path, parser: parser)
        self.ports = ports
        self.budget = budget
    }

    public var conns: Int { assembler.connCount }

    public mutating func add(_ segment: TCPSegment) -> SessionAssembler.Output {
        if !ports.isEmpty, !ports.contains(segment.source.port), !ports.contains(segment.destination.port) { return .init() }
        segments += 1
        let key = Key(segment.source, segment.destination)
        // A SYN on a connection whose ends are both known to have ended starts a new one.
        if segment.flags.contains(.syn), !segment.flags.contains(.ack), let known = connections[key], !known.ended.isEmpty {
            connections[key] = nil
        }
        let connection = connections[key] ?? {
            tcpConnections += 1
            let made = Connection(
                reassembler: TCPReassembler(first: segment), conversation: HTTPConversation(fromTheStart: segment.flags.contains(.syn), budget: budget), number: tcpConnections
            )
            connections[key] = made
            return made
        }()
        var output = SessionAssembler.Output()
        for (side, event) in connection.reassembler.add(segment) {
            feed(event, from: side, of: connection, into: &output)
        }
        if connection.ended.count == 2 {
            connections[key] = nil
        }
        return output
    }

    /// An event read elsewhere than off TCP (a HAR file's entries).
    public mutating func take(_ event: HTTPConversation.Event, on flow: SessionAssembler.Flow) -> SessionAssembler.Output {
        assembler.take(event, on: flow)
    }

    /// The capture is over: what waits behind holes, and a close for every conn still open.
    public mutating func finish(time: Double) -> SessionAssembler.Output {
        var output = SessionAssembler.Output()
        for key in connections.keys.sorted(by: { ($0.low, $0.high) < ($1.low, $1.high) }) {
            let connection = connections[key]!
            for (side, event) in connection.reassembler.finish(time: time) {
                feed(event, from: side, of: connection, into: &output)
            }
        }
        connections = [:]
        let closing = assembler.finish(time: time)
        output.records += closing.records
        return output
    }

    private mutating func feed(_ event: TCPReassembler.Event, from side: TCPReassembler.Side, of connection: Connection, into output: inout SessionAssembler.Output) {
        if case .gap = event { gaps += 1 }
        if case .end = event { connection.ended.insert(side) }
        let conversationEvents = connection.conversation.receive(event, from: side)
        let flow = connection.currentFlow()
        for conversationEvent in conversationEvents {
            let taken = assembler.take(conversationEvent, on: flow)
            output.records += taken.records
            output.tokens += taken.tokens
        }
    }
}
