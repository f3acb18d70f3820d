import LiveIntervention
import SocketIOProtocol
import Synchronization
import TrafficCapture
import TrafficObservation

/// What the inspector's page and API call: ``LiveControl`` on the proxy's conns.
extension SocketIOProxy: LiveControl {
    public func liveConns() -> [LiveConn] {
        tracker.openConnections().compactMap { connection in
            connection.state.withLock { state in
                guard !state.recorder.isClosed else { return nil }
                return LiveConn(
                    conn: connection.id, transport: state.onWebSocket ? .websocket : .polling, eio: connection.engineVersion,
                    parser: state.recorder.observation.decoder.parser ?? .json, namespaces: state.gate.namespaces, sid: state.recorder.observation.sid
                )
            }
        }
    }

    /// Names the Socket.IO client and server libraries keep for themselves: an event by one of
    /// these names is refused rather than sent.
    static let reservedEvents: Set<String> = ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]

    public func emit(_ request: EmitRequest, by: InterventionRecord.Actor) async throws(LiveControlError) -> EmitOutcome {
        let connection = try live(request.conn)
        guard !request.event.isEmpty, !Self.reservedEvents.contains(request.event) else {
            throw LiveControlError(.badRequest, request.event.isEmpty ? "an event needs a name" : "\(request.event) is a name Socket.IO keeps for itself")
        }
        let (namespaces, parser) = connection.state.withLock { ($0.gate.namespaces, $0.recorder.observation.decoder.parser ?? .json) }
        guard namespaces.contains(request.nsp) else {
            let joined = namespaces.isEmpty ? "none yet" : namespaces.joined(separator: ", ")
            throw LiveControlError(.notConnected, "\(request.conn) has not joined \(request.nsp) (joined: \(joined))")
        }
        let ackID = request.ack ? connection.state.withLock { $0.gate.reserveAckID() } : nil
        let packet = SocketPacket.event(request.event, request.args.map(\.restoringBinary), namespace: request.nsp, ackID: ackID)
        let (raw, attachments) = SocketIOCodec.encode(packet)
        let record = InterventionRecord(
            action: .emit, by: by, dir: request.dir, raw: raw, attachments: attachments.isEmpty ? nil : attachments.map { Base64.encode($0) }
        )
        guard let seq = tracker.emit(.intervention(record), on: connection) else {
            throw LiveControlError(.connClosed, "\(request.conn) has closed")
        }
        let packets = SocketIOPacketCodec(parser: parser, version: SocketIOVersion(engine: connection.engineVersion)).encode(packet)
        guard let ackID else {
            send(packets, dir: request.dir, on: connection)
            return EmitOutcome(seq: seq)
        }
        let answer = OneAnswer()
        let timeout = min(max(request.timeout, 0), EmitRequest.longestTimeout)
        let timer = Mutex<Task<Void, Never>?>(nil)
        let args = await withCheckedContinuation { (continuation: CheckedContinuation<[JSONValue]?, Never>) in
            answer.waiting(continuation)
            connection.state.withLock { state in
                state.gate.expect(ackID: ackID, emitSeq: seq, dir: request.dir)
                state.answerWaiters[ackID] = { args in answer.give(args) }
            }
            send(packets, dir: request.dir, on: connection)
            timer.withLock { timer in
                timer = Task {
                    try? await Task.sleep(for: .seconds(timeout))
                    guard !Task.isCancelled else { return }
                    // No answer in time: a later one goes on to the peer, as any ack would.
                    connection.state.withLock { state in
                        state.gate.forget(ackID: ackID)
                        state.answerWaiters[ackID] = nil
                    }
                    answer.give(nil)
                }
            }
        }
        timer.withLock { $0?.cancel() }
        return EmitOutcome(seq: seq, ack: args, timedOut: args == nil)
    }

    public func addBreakpoint(filter: String, by: InterventionRecord.Actor) throws(LiveControlError) -> Breakpoint {
        try breakpointTable().add(filter, by: by)
    }

    public func breakpoints() -> [Breakpoint] { breakpointsSet?.all ?? [] }

    public func removeBreakpoint(id: String) -> Bool { breakpointsSet?.remove(id: id) ?? false }

    public func heldPackets() -> [HeldPacket] {
        tracker.openConnections().flatMap { connection in
            connection.state.withLock { state in
                state.gate.held.map {
                    HeldPacket(seq: $0.seq, conn: connection.id, breakpoint: $0.hold.breakpoint, packet: $0.hold.record, since: $0.hold.since, waiting: $0.waiting)
                }
            }
        }.sorted { $0.seq < $1.seq }
    }

    public func release(seq: Int, args: [JSONValue]?, by: InterventionRecord.Actor) async throws(LiveControlError) {
        let (connection, held) = try holding(seq)
        guard let args else {
            guard await settle(seq, on: connection, .release, by: by, action: .release) else { throw Self.notHeld(seq) }
            return
        }
        var edited = SocketPacket(record: held.packet)
        let restored = args.map(\.restoringBinary)
        if held.packet.type.isEvent {
            edited.data = .array([.string(JSONString(held.packet.event ?? ""))] + restored)
        } else if held.packet.type.isAck {
            edited.data = .array(restored)
        } else {
            throw LiveControlError(.badRequest, "a \(held.packet.type.name) has no arguments to edit: release it as it is, or drop it")
        }
        let parser = connection.state.withLock { $0.recorder.observation.decoder.parser ?? .json }
        let packets = SocketIOPacketCodec(parser: parser, version: SocketIOVersion(engine: connection.engineVersion)).encode(edited)
        let (raw, attachments) = SocketIOCodec.encode(edited)
        let settled = await settle(
            seq, on: connection, .replace(packets), by: by, action: .edit, raw: raw,
            attachments: attachments.isEmpty ? nil : attachments.map { Base64.encode($0) }
        )
        guard settled else { throw Self.notHeld(seq) }
    }

    public func drop(seq: Int, by: InterventionRecord.Actor) async throws(LiveControlError) {
        let (connection, _) = try holding(seq)
        guard await settle(seq, on: connection, .drop, by: by, action: .drop) else { throw Self.notHeld(seq) }
    }

    // MARK: Helpers

    private func live(_ conn: String) throws(LiveControlError) -> ProxyConnection {
        guard let connection = tracker.openConnection(id: conn), !connection.closed else {
            throw tracker.wasOpened(id: conn)
                ? LiveControlError(.connClosed, "\(conn) has closed") : LiveControlError(.unknownConn, "no conn \(conn)")
        }
        return connection
    }

    private func holding(_ seq: Int) throws(LiveControlError) -> (ProxyConnection, HeldPacket) {
        for connection in tracker.openConnections() {
            let held = connection.state.withLock { state in state.gate.held.first { $0.seq == seq } }
            if let held {
                return (connection, HeldPacket(seq: seq, conn: connection.id, breakpoint: held.hold.breakpoint, packet: held.hold.record, since: held.hold.since, waiting: held.waiting))
            }
        }
        throw Self.notHeld(seq)
    }

    private static func notHeld(_ seq: Int) -> LiveControlError {
        LiveControlError(.notHeld, "packet \(seq) is not held (let go already, dropped, or its conn closed)")
    }

    private func breakpointTable() throws(LiveControlError) -> BreakpointTable {
        guard let breakpointsSet else { throw LiveControlError(.badRequest, "this proxy cannot hold packets") }
        return breakpointsSet
    }
}

/// The answer to one emit, given once: by the peer's ack or by the timeout, whichever is first.
final class OneAnswer: Sendable {
    private let state = Mutex<(continuation: CheckedContinuation<[JSONValue]?, Never>?, given: Bool)>((nil, false))

    func waiting(_ continuation: CheckedContinuation<[JSONValue]?, Never>) {
        state.withLock { $0.continuation = continuation }
    }

    func give(_ args: [JSONValue]?) {
        let continuation = state.withLock { state -> CheckedContinuation<[JSONValue]?, Never>? in
            guard !state.given else { return nil }
            state.given = true
            return state.continuation
        }
        continuation?.resume(returning: args)
    }
}
