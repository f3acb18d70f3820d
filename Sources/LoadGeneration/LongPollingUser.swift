import HTTPClientTransport
import NIOCore
import NIOHTTP1
import SocketIOProtocol
import TransportCore
import TransportTLS

/// A virtual user on HTTP long-polling, with no task of its own: its requests go through a pool
/// of its own (a long-poll connection and a POST connection, kept alive) as futures on the user's
/// event loop. One GET is always out; POSTs go one at a time (engine.io refuses a POST while it
/// reads another), what was sent meanwhile batched into the next. A conn recorded upgrading
/// upgrades as engine.io-client does: `2probe` on a new WebSocket, `3probe`, polling paused (no new
/// GET, the one out answered, the POST out answered), `5`, and the WebSocket carries the session.
final class LongPollingUser: UserTransport {
    private let pool: HTTPConnectionPool
    private let loop: any EventLoop
    /// `path?EIO=…&transport=polling&query`; the sid is added once known.
    private let baseURI: String
    private let version: EngineIOVersion
    private var codec: SocketIOPacketCodec
    private let session: UserSession
    private var sid: String?
    private var outbox: [EnginePacket] = []
    private var posting = false
    private var closing = false
    private var ended = false
    private var poll: PendingExchange?
    private var pingTimer: RepeatedTask?
    /// Where the upgrade is to go (`…&transport=websocket`), for a conn recorded upgrading.
    private let upgradeURI: String?
    private let host: String
    private let port: Int
    private let tls: TLSClientSettings?
    private let parser: SocketIOParser
    private var pingInterval = 25_000
    /// The WebSocket whose probe was answered: no new GET, and the upgrade once nothing is out.
    private var upgradingTo: WebSocketUser?
    private var upgraded = false

    init(
        host: String, port: Int, uri: String, tls: TLSClientSettings?, version: EngineIOVersion, parser: SocketIOParser, loop: any EventLoop,
        session: UserSession, upgradeURI: String? = nil
    ) {
        pool = HTTPConnectionPool(host: host, port: port, maxIdle: 2, tls: tls)
        self.loop = loop
        baseURI = uri
        self.version = version
        codec = SocketIOPacketCodec(parser: parser, version: SocketIOVersion(engine: version))
        self.session = session
        self.upgradeURI = upgradeURI
        self.host = host
        self.port = port
        self.tls = tls
        self.parser = parser
        session.transport = self
    }

    private var bound: NIOLoopBound<LongPollingUser> { NIOLoopBound(self, eventLoop: loop) }

    private func head(_ method: HTTPMethod, length: Int = 0) -> HTTPRequestHead {
        var headers = HTTPHeaders()
        if method == .POST {
            headers.add(name: "Content-Type", value: "text/plain;charset=UTF-8")
            headers.add(name: "Content-Length", value: String(length))
        }
        return HTTPRequestHead(version: .http1_1, method: method, uri: sid.map { "\(baseURI)&sid=\($0)" } ?? baseURI, headers: headers)
    }

    /// The handshake; on its answer the play starts. Call on the loop.
    func start() {
        let bound = bound
        pool.exchange(head: head(.GET), body: [], on: loop).response.whenComplete { result in
            bound.value.opened(result)
        }
    }

    private func opened(_ result: Result<HTTPResponse, any Error>) {
        // Stopped (the run's time is up) while the handshake was out.
        guard !ended else { return }
        guard case .success(let response) = result, response.status == .ok,
            let packets = try? EngineIOCodec.decodePayload(response.body, version: version),
            let open = packets.first, open.type == .open, let text = open.text, let handshake = try? EngineHandshake(json: text)
        else { return end() }
        sid = handshake.sid
        pingInterval = handshake.pingInterval
        if version == .v3 {
            let interval = TimeAmount.milliseconds(Int64(max(100, handshake.pingInterval)))
            let bound = bound
            pingTimer = loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in bound.value.post([EnginePacket(.ping)]) }
        }
        take(packets.dropFirst())
        nextPoll()
        if let upgradeURI, handshake.upgrades.contains("websocket") {
            // As the capture shows it: the play starts on the WebSocket once the upgrade is done
            // (or on polling, if it cannot be).
            probe(upgradeURI + "&sid=\(handshake.sid)")
        } else {
            startPlay()
        }
    }

    private var playing = false

    private func startPlay() {
        guard !playing, !ended else { return }
        playing = true
        session.open()
    }

    // MARK: The upgrade

    private func probe(_ uri: String) {
        let (host, port, tls, loop, version, parser, bound) = (host, port, tls, loop, version, parser, bound)
        let seed = UInt64.random(in: .min ... .max)
        // The dial is async; the task ends once the WebSocket is open (or not).
        Task {
            let outcome = try? await WebSocketClient.dial(
                host: host, port: port, uri: uri, headers: [:], eventLoop: loop, maxMessageSize: WebSocketUser.largestMessage, tls: tls
            ) { channel in
                try channel.pipeline.syncOperations.addHandler(WebSocketUser(version: version, parser: parser, seed: seed, upgrading: bound))
            }
            // The probe goes once the upgrade is done (the HTTP handlers leave after `install`).
            guard case .upgraded(let channel, _) = outcome else { return loop.execute { bound.value.probeFailed() } }
            channel.eventLoop.execute { (try? channel.pipeline.syncOperations.handler(type: WebSocketUser.self))?.sendProbe() }
        }
    }

    func probeAnswered(by socket: WebSocketUser) {
        guard !ended, !closing else { return socket.close() }
        upgradingTo = socket
        completeUpgrade()
    }

    /// The probe failed (refused, closed, never answered): the session goes on polling.
    func probeFailed() {
        upgradingTo = nil
        if poll == nil { nextPoll() }
        startPlay()
    }

    private func completeUpgrade() {
        guard let socket = upgradingTo, poll == nil, !posting, !ended else { return }
        upgradingTo = nil
        upgraded = true
        pingTimer?.cancel()
        pool.close()
        socket.upgrade(session, sending: outbox, pingInterval: pingInterval)
        outbox = []
        if !playing {
            playing = true
            session.open()
        }
    }

    // MARK: Polling

    private func nextPoll() {
        guard !ended, !upgraded else { return }
        // Paused for the upgrade: the GET out was answered, nothing new goes.
        guard upgradingTo == nil else { return completeUpgrade() }
        let bound = bound
        let pending = pool.exchange(head: head(.GET), body: [], on: loop)
        poll = pending
        pending.response.whenComplete { result in
            let user = bound.value
            user.poll = nil
            guard !user.upgraded else { return }
            guard case .success(let response) = result, response.status == .ok,
                let packets = try? EngineIOCodec.decodePayload(response.body, version: user.version)
            else { return user.end() }
            user.take(packets[...])
            user.nextPoll()
        }
    }

    private func take(_ packets: ArraySlice<EnginePacket>) {
        for packet in packets where !ended {
            switch packet.type {
            case .ping: post([EnginePacket(.pong, packet.payload)])
            case .message:
                if let decoded = (try? codec.decode(packet.payload)) ?? nil { session.receive(decoded) }
            case .close: end()
            default: break
            }
        }
    }

    func send(_ packet: SocketPacket) { post(codec.encode(packet)) }

    private func post(_ packets: [EnginePacket]) {
        guard !ended, !upgraded else { return }
        outbox += packets
        flush()
    }

    private func flush() {
        // While the upgrade waits, what is sent waits for the WebSocket.
        guard !posting, !outbox.isEmpty, sid != nil, !ended, upgradingTo == nil else { return }
        posting = true
        let body = EngineIOCodec.encodePayload(outbox, version: version).body
        outbox = []
        let bound = bound
        pool.exchange(head: head(.POST, length: body.count), body: body, on: loop).response.whenComplete { result in
            let user = bound.value
            user.posting = false
            guard case .success(let response) = result, response.status == .ok else { return user.end() }
            if user.closing, user.outbox.isEmpty { return user.end() }
            if user.upgradingTo != nil { return user.completeUpgrade() }
            user.flush()
        }
    }

    /// A close packet, then the session's end once it has been taken.
    func close() {
        guard !closing, !ended else { return }
        closing = true
        if sid == nil { return end() }
        post([EnginePacket(.close)])
    }

    private func end() {
        guard !ended, !upgraded else { return }
        ended = true
        pingTimer?.cancel()
        poll?.cancel()
        pool.close()
        session.transportEnded()
    }
}
