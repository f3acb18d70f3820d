import FaultInjection
import LiveIntervention
import NIOCore
import NIOHTTP1
import NIOPosix
import SocketIOProtocol
import SocketIOTransport
import Synchronization
import TrafficCapture
import TrafficObservation

/// The breakpoints set on a proxy (from `--break`, the inspector's page, the API).
final class BreakpointTable: Sendable {
    private struct Entry: Sendable {
        var breakpoint: Breakpoint
        var filter: CaptureFilter
    }

    /// More breakpoints than anyone sets by hand: a runaway script is refused.
    static let limit = 256

    private let state = Mutex<(entries: [Entry], next: Int)>(([], 1))

    func add(_ filter: String, by: InterventionRecord.Actor) throws(LiveControlError) -> Breakpoint {
        let parsed: CaptureFilter
        do {
            parsed = try CaptureFilter(filter)
        } catch {
            throw LiveControlError(.badFilter, "breakpoint filter \(filter): \(error.description)")
        }
        let added: Breakpoint? = state.withLock { state in
            guard state.entries.count < Self.limit else { return nil }
            defer { state.next += 1 }
            let breakpoint = Breakpoint(id: "b\(state.next)", filter: filter, by: by)
            state.entries.append(Entry(breakpoint: breakpoint, filter: parsed))
            return breakpoint
        }
        guard let added else { throw LiveControlError(.tooMany, "at most \(Self.limit) breakpoints") }
        return added
    }

    func remove(id: String) -> Bool {
        state.withLock { state in
            let before = state.entries.count
            state.entries.removeAll { $0.breakpoint.id == id }
            return state.entries.count < before
        }
    }

    var all: [Breakpoint] { state.withLock { $0.entries.map(\.breakpoint) } }

    /// The first breakpoint a packet's record matches.
    func matching(_ record: CaptureRecord) -> Breakpoint? {
        state.withLock { state in
            guard !state.entries.isEmpty, case .packet = record.body else { return nil }
            return state.entries.first { $0.filter.matches(record) }?.breakpoint
        }
    }
}

/// Live intervention: packets held at breakpoints and let go, emits of the proxy's own. Each
/// packet is decided on the fault path (``decide(_:dir:wireSize:on:)``), after `--fault`'s rules;
/// what a breakpoint holds is kept by the conn's ``ConnectionGate`` and sent later on whatever
/// carries the conn then: its WebSocket, the next long-poll answer, or a POST of the proxy's.
extension SocketIOProxy {
    /// After the rules' decision on a whole Socket.IO packet (`fate`): an answer to an emit of the
    /// proxy's is taken out; a packet a breakpoint matches, or one behind a held one, is kept.
    func intervene(_ packet: PacketRecord, seq: Int, last: EnginePacket, dir: Direction, fate: inout Decision, on connection: ProxyConnection, table: BreakpointTable) {
        let now = CaptureClock.secondsSince1970()
        if packet.type.isAck, let id = packet.id, id >= ConnectionGate.firstInjectedAckID {
            let answered = connection.state.withLock { state -> (ConnectionGate.Asked, (@Sendable ([JSONValue]?) -> Void)?)? in
                _ = state.gate.group(completedBy: last, dir: dir)
                guard let asked = state.gate.answer(ackID: id, dir: dir) else { return nil }
                return (asked, state.answerWaiters.removeValue(forKey: id))
            }
            if let (asked, waiter) = answered {
                fate.delivery = .drop
                emit(.intervention(InterventionRecord(action: .answer, by: .proxy, dir: dir, packet: seq, answers: asked.emitSeq)), on: connection)
                waiter?(packet.args ?? [])
                return
            }
        }
        let breakpoint = seq > 0 ? table.matching(CaptureRecord(seq: seq, conn: connection.id, .packet(packet))) : nil
        let delivery = fate.delivery
        let admission = connection.state.withLock { state -> ConnectionGate.Admission in
            let group = state.gate.group(completedBy: last, dir: dir)
            let outgoing: [EnginePacket]
            switch delivery {
            case .drop: return .pass
            case .replace(let packets): outgoing = packets
            case .pass, .hold: outgoing = group
            }
            guard seq > 0 else { return .pass }
            let hold = breakpoint.map { ConnectionGate.Hold(breakpoint: $0.id, by: $0.by, since: now, record: packet) }
            return state.gate.admit(outgoing, seq: seq, dir: dir, hold: hold)
        }
        switch admission {
        case .pass: return
        case .kept: break
        case .overflowing(let oldest):
            Task {
                _ = await self.settle(
                    oldest, on: connection, .release, by: .proxy, action: .release,
                    detail: "let go: more than \(ConnectionGate.queueLimit) packets or \(ConnectionGate.queueByteLimit >> 20) MB waited behind it"
                )
            }
        }
        // Kept: the relay lets it go by; the gate sends it later.
        fate.delivery = .drop
        fate.delay = 0
        if let breakpoint {
            emit(.intervention(InterventionRecord(action: .hold, by: breakpoint.by, dir: dir, packet: seq, breakpoint: breakpoint.id)), on: connection)
            let timeout = configuration.intervention?.breakTimeout ?? 60
            Task {
                try? await Task.sleep(for: .seconds(timeout))
                _ = await self.settle(seq, on: connection, .release, by: .proxy, action: .timeout, detail: "nobody decided within \(Self.seconds(timeout))")
            }
        }
    }

    /// The Engine.IO packet a frame carries.
    static func enginePacket(_ frame: TrafficDecoder.Frame, version: EngineIOVersion) -> EnginePacket? {
        switch frame {
        case .webSocket(let message): try? EngineIOCodec.decode(message, version: version)
        case .polledPacket(let packet): packet
        default: nil
        }
    }

    /// A held packet decided, and its record written. Returns false when it was not held (any more). On a WebSocket it runs on the relay's loop,
    /// so that nothing the relay decides comes between the gate opening and the packets going.
    func settle(
        _ seq: Int, on connection: ProxyConnection, _ resolution: ConnectionGate.Resolution, by: InterventionRecord.Actor, action: InterventionRecord.Action,
        raw: String? = nil, attachments: [String]? = nil, detail: String? = nil
    ) async -> Bool {
        let work: @Sendable () -> Bool = {
            self.settleNow(seq, on: connection, resolution, by: by, action: action, raw: raw, attachments: attachments, detail: detail)
        }
        guard let relay = connection.state.withLock({ $0.onWebSocket ? $0.relay : nil }) else { return work() }
        return await withCheckedContinuation { continuation in
            relay.eventLoop.execute { continuation.resume(returning: work()) }
        }
    }

    private func settleNow(
        _ seq: Int, on connection: ProxyConnection, _ settlement: ConnectionGate.Resolution, by: InterventionRecord.Actor, action: InterventionRecord.Action,
        raw: String?, attachments: [String]?, detail: String?
    ) -> Bool {
        let settled = connection.state.withLock { state -> (Direction, ConnectionGate.Hold, [EnginePacket])? in
            guard !state.recorder.isClosed else { return nil }
            return state.gate.resolve(seq: seq, settlement)
        }
        guard let (dir, hold, released) = settled else { return false }
        let heldFor = ((CaptureClock.secondsSince1970() - hold.since) * 1_000_000).rounded() / 1000
        emit(
            .intervention(InterventionRecord(
                action: action, by: by, dir: dir, packet: seq, breakpoint: hold.breakpoint, raw: raw, attachments: attachments,
                heldMilliseconds: heldFor, detail: detail
            )),
            on: connection
        )
        send(released, dir: dir, on: connection)
        return true
    }

    /// Packets of the proxy's own toward `dir`'s receiver, on what carries the conn now: its
    /// WebSocket (call on the relay's loop), the client's next long-poll answer, or a POST.
    func send(_ packets: [EnginePacket], dir: Direction, on connection: ProxyConnection) {
        guard !packets.isEmpty else { return }
        let (relay, waiter) = connection.state.withLock { state -> (WebSocketRelay.Control?, EventLoopPromise<HTTPResponse>?) in
            if state.onWebSocket, let relay = state.relay { return (relay, nil) }
            guard dir == .serverToClient else { return (nil, nil) }
            return (nil, state.polling.send(packets))
        }
        let version = connection.engineVersion
        if let relay {
            let messages = packets.map { EngineIOCodec.encode($0, version: version) }
            if relay.eventLoop.inEventLoop {
                relay.inject(from: dir == .clientToServer ? .client : .server, messages)
            } else {
                relay.eventLoop.execute { relay.inject(from: dir == .clientToServer ? .client : .server, messages) }
            }
        } else if dir == .serverToClient {
            waiter?.succeed(pollingAnswer(packets, on: connection))
        } else {
            post(packets, on: connection)
        }
    }

    /// A POST of the proxy's in the conn's session, after any other POST of it is answered.
    private func post(_ packets: [EnginePacket], on connection: ProxyConnection) {
        guard let sid = connection.sid else { return }
        let (upstream, version) = (connection.upstream, connection.engineVersion)
        let (body, _) = EngineIOCodec.encodePayload(packets, version: version)
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: connection.path + "?EIO=\(version.rawValue)&transport=polling&sid=\(sid)")
        head.headers.add(name: "Host", value: "\(upstream.host):\(upstream.port)")
        head.headers.add(name: "Content-Type", value: "text/plain;charset=UTF-8")
        head.headers.add(name: "Content-Length", value: String(body.count))
        if let cookie = connection.state.withLock({ $0.cookie }) { head.headers.add(name: "Cookie", value: cookie) }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        _ = inTurn(on: connection, loop: loop) { [head] in
            upstream.pool.exchange(head: head, body: body, maxResponseSize: 1 << 16, on: loop).response
                .map { response in
                    if response.status != .ok {
                        self.emit(.error(ErrorRecord(
                            dir: .clientToServer, code: .upstreamStatus,
                            message: "the server answered \(response.status.code) to a POST of the proxy's (packets let go or emitted)"
                        )), on: connection)
                    }
                }
        }
    }

    /// Runs a POST of the session once the one before it is answered: Engine.IO servers refuse
    /// a POST while they read another (engine.io: "data request overlap from client").
    func inTurn<Value: Sendable>(on connection: ProxyConnection, loop: any EventLoop, _ exchange: @escaping @Sendable () -> EventLoopFuture<Value>) -> EventLoopFuture<Value> {
        let done = loop.makePromise(of: Void.self)
        let previous = connection.state.withLock { state -> EventLoopFuture<Void>? in
            defer { state.lastPost = done.futureResult }
            return state.lastPost
        }
        let result = (previous?.hop(to: loop) ?? loop.makeSucceededVoidFuture()).flatMap { exchange() }
        result.whenComplete { _ in done.succeed() }
        return result
    }
}
