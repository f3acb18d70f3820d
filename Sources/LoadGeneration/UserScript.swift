import SocketIOClient
import SocketIOProtocol
import TrafficCapture
import TrafficReplay

/// One captured conn as its virtual users play it: made once and shared by all of them (a user
/// keeps only what is its own: its place, its waits, its re-minted tokens).
final class UserScript: Sendable {
    /// A server event the capture shows a client packet caused.
    struct Effect: Sendable, Hashable {
        var name: String
        var namespace: String
    }

    struct Send: Sendable {
        var packet: SocketPacket
        /// How long after the conn's first client packet it was recorded (think times at `--speed 1`).
        var offset: Duration
        /// What the capture shows this packet caused, waited for from when it goes.
        var effects: [Effect]
    }

    let sends: [Send]
    /// The replay's script: the session's shape, and the tokens in its query and CONNECTs to re-mint.
    let source: Replayer.Script

    var engineVersion: EngineIOVersion { source.engineVersion }
    var transport: SocketIOClient.TransportPlan { source.transport }
    var path: String { source.path }
    var query: String { source.query }
    var parser: SocketIOParser { source.parser }

    /// - Parameter causes: effect `seq` to cause `seq` (``LoadRunner/causes(_:)``).
    init(_ script: Replayer.Script, causes: [Int: Int]) {
        var effects: [Int: [Effect]] = [:]
        for step in script.steps {
            if let cause = causes[step.seq], let name = step.packet.event { effects[cause, default: []].append(Effect(name: name, namespace: step.packet.nsp)) }
        }
        let clientSteps = script.steps.filter { $0.packet.dir == .clientToServer }
        let base = clientSteps.first.flatMap { script.times[$0.seq] } ?? 0
        sends = clientSteps.compactMap { step in
            let packet = SocketPacket(record: step.packet)
            // Protocol v4 joins `/` by itself: a recorded CONNECT to it is the server's doing.
            if packet.type == .connect, script.engineVersion == .v3, packet.namespace == "/" { return nil }
            // Captures keep microseconds; seconds since 1970 as a Double do not keep them exactly.
            let offset = Duration.microseconds(Int64(script.times[step.seq].map { (max(0, $0 - base) * 1e6).rounded() } ?? 0))
            return Send(packet: packet, offset: offset, effects: effects[step.seq] ?? [])
        }
        source = script
    }

    /// A user's own tokens: the query and the CONNECTs' data, re-minted with the user's claims.
    struct Tokens: Sendable {
        var query: String
        /// By index into ``sends``: the CONNECTs whose data changed.
        var connectData: [(index: Int, data: JSONValue?)] = []
    }

    func tokens(refresher: TokenRefresher) async -> Tokens {
        // Only what carries tokens is refreshed, so that a user holds no copy of the whole script.
        var carrier = source
        carrier.steps = source.steps.filter { $0.packet.type == .connect && $0.packet.dir == .clientToServer }
        let refreshed = await Replayer.refreshTokens(carrier, refresher: refresher)
        var tokens = Tokens(query: refreshed.query)
        var connects = refreshed.steps.makeIterator()
        for index in sends.indices where sends[index].packet.type == .connect {
            // Both lists hold the CONNECTs in order; a v3 CONNECT to `/` was left out of `sends`.
            while let step = connects.next() {
                let packet = SocketPacket(record: step.packet)
                guard packet.namespace == sends[index].packet.namespace else { continue }
                if packet.data != sends[index].packet.data { tokens.connectData.append((index, packet.data)) }
                break
            }
        }
        return tokens
    }
}
