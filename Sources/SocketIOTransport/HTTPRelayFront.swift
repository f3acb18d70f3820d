#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOHTTP1
import SocketIOProtocol
import NIOPosix
import TransportCore
import TransportTLS
import WebSocketTransport
import HTTPClientTransport

/// Relays a server connection's requests as bytes, as the WebSocket relay does frames: each
/// request's head is read (``HTTPFraming``), its hop-by-hop fields dropped, and it goes with its
/// body, as they come, on a kept raw connection to the upstream (``ByteRelayPool``) on the same
/// event loop; the answer comes back the same way, its framing followed to find its end. NIO's
/// HTTP codec never sees these bytes; the policy observes each message once it went on.
///
/// It sits first in the connection's pipeline (behind TLS). A request the policy does not take,
/// or whose framing is not plain (chunked, `Expect`, HTTP/1.0, an upgrade), hands the connection
/// over, from that request on, to the HTTP codec behind it, which then serves it as before.
/// One exchange at a time: a request's answer goes before the next request is read on (reading
/// itself goes on, up to 64 KiB ahead).
final class HTTPRelayFront: ChannelDuplexHandler, RemovableChannelHandler, ByteRelayUpstreamOwner {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let policy: any HTTPRelayPolicy
    private let idle: ConnectionDeadlines
    private let maxBody: Int
    private var context: ChannelHandlerContext?
    /// Bytes read from the client and not yet relayed.
    private var inbound: ByteBuffer?
    /// How far the search for the end of the head in `inbound` got.
    private var searched = 0
    private var current: Exchange?
    /// The client's address, asked of the channel once: NIO takes a lock to answer.
    private var clientAddress: SocketAddress?
    /// A request the policy answers itself, while its body comes and its answer is awaited.
    private var answering: Answering?
    /// Reading stopped (the client sent far ahead, or the capture is behind).
    private var paused = false
    private var readHeld = false
    private var waitingForAdmission = false
    /// Handed to the policy's ``HTTPRelayPolicy/admission`` gate.
    private var resumeAdmission: (@Sendable () -> Void)?
    private var done = false

    /// One request and its answer.
    private final class Exchange {
        let policyExchange: HTTPRelayExchange
        let pool: ByteRelayPool
        let method: HTTPMethod
        /// The target as sent upstream.
        let target: String
        let observesBodies: Bool
        let observesAnswerHeaders: Bool
        let keepClient: Bool
        var link: ByteRelayLink?
        var reused = false
        var retried = false
        /// The request as sent upstream (kept whole: a reused connection closed before it
        /// answered is tried again on a new one).
        var sent: ByteBuffer
        let bodyStart: Int
        var bodyRemaining: Int
        var requestDone = false
        var answer = Answer()

        init(
            policyExchange: HTTPRelayExchange, pool: ByteRelayPool, method: HTTPMethod, target: String, observesBodies: Bool, observesAnswerHeaders: Bool,
            keepClient: Bool,
            sent: ByteBuffer, bodyLength: Int
        ) {
            self.policyExchange = policyExchange
            self.pool = pool
            self.method = method
            self.target = target
            self.observesBodies = observesBodies
            self.observesAnswerHeaders = observesAnswerHeaders
            self.keepClient = keepClient
            self.sent = sent
            bodyStart = sent.readableBytes
            bodyRemaining = bodyLength
        }

        /// For errors only: made when one is reported, not for every request.
        var requestLine: String { pool.requestLine(method: method.rawValue, target: target) }
    }

    /// A request gathered for the policy's answer.
    private final class Answering {
        let request: RelayedRequest
        let respond: @Sendable (HTTPRequest, EventLoopFuture<Void>) -> EventLoopFuture<HTTPResponse>
        let keepClient: Bool
        var body: ByteBuffer
        var remaining: Int
        var clientClosed: EventLoopPromise<Void>?

        init(
            request: RelayedRequest, respond: @escaping @Sendable (HTTPRequest, EventLoopFuture<Void>) -> EventLoopFuture<HTTPResponse>,
            keepClient: Bool, body: ByteBuffer, remaining: Int
        ) {
            self.request = request
            self.respond = respond
            self.keepClient = keepClient
            self.body = body
            self.remaining = remaining
        }
    }

    /// The upstream's answer as it comes.
    private struct Answer {
        var headBytes: ByteBuffer?
        var searched = 0
        var framing: HTTPFraming.Body?
        var remaining = 0
        var chunks = HTTPFraming.ChunkedReader()
        var status = HTTPResponseStatus.ok
        /// Its header fields as they came, when the route asks for them.
        var headers: [(name: String, value: String)] = []
        var body: ByteBuffer?
        var truncated = false
        /// Some of it went to the client: a failure can no longer be answered.
        var forwarded = false
        var received = false
        var complete = false
        var upstreamKeepAlive = true
    }

    init(policy: any HTTPRelayPolicy, idle: ConnectionDeadlines, maxBody: Int) {
        self.policy = policy
        self.idle = idle
        self.maxBody = maxBody
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if policy.admission != nil {
            // Made once, not per request; the cycle through `self` is cut in handlerRemoved.
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            resumeAdmission = { handler.eventLoop.execute { handler.value.admitted() } }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        resumeAdmission = nil
    }

    /// The capture caught up: the request waiting is read again.
    private func admitted() {
        guard waitingForAdmission, let context else { return }
        waitingForAdmission = false
        resume()
        process(context)
        flushUpstream()
    }

    /// What went upstream goes out: at a read's end, and after relaying outside one (a request
    /// admitted late, an upstream connection just dialled), where no read's end would follow
    /// while the client waits for its answer.
    private func flushUpstream() {
        current?.link?.handler.value.flush()
    }

    // MARK: The client's side

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if inbound == nil || inbound!.readableBytes == 0 {
            inbound = buffer
        } else {
            inbound!.writeBuffer(&buffer)
        }
        process(context)
        // Reading goes on while a request is answered (a client that leaves is seen at once, and
        // pausing costs two epoll_ctl a request); only a client that sends far ahead is paused.
        if let inbound, inbound.readableBytes > Self.readAhead, !paused { pause() }
    }

    /// Bytes read ahead of the request being relayed (a pipelining client) before reading stops.
    private static var readAhead: Int { 64 << 10 }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushUpstream()
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if paused {
            readHeld = true
            return
        }
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { current?.link?.handler.value.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    var clientWritable: Bool { context?.channel.isWritable ?? false }

    func channelInactive(context: ChannelHandlerContext) {
        done = true
        answering?.clientClosed?.succeed()
        if let exchange = current {
            current = nil
            policy.clientWentAway(exchange.policyExchange)
            exchange.link?.handler.value.close()
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A TLS or socket error: the connection ends (channelInactive sorts out the exchange).
        context.fireErrorCaught(error)
    }

    private func pause() {
        paused = true
    }

    private func resume() {
        paused = false
        if readHeld {
            readHeld = false
            context?.read()
        }
    }

    /// Relays what the client sent: the current request's body, or the next request's head.
    private func process(_ context: ChannelHandlerContext) {
        while !done {
            if let answering {
                if answering.clientClosed == nil { gather(answering, context: context) }
                return
            }
            guard var bytes = inbound, bytes.readableBytes > 0 else { return }
            if let exchange = current {
                guard !exchange.requestDone else { return }
                let take = min(exchange.bodyRemaining, bytes.readableBytes)
                if take > 0 {
                    let slice = bytes.readSlice(length: take)!
                    inbound = bytes
                    idle.bodyProgressed()
                    send(slice, in: exchange)
                    exchange.bodyRemaining -= take
                }
                if exchange.bodyRemaining == 0 { requestComplete(exchange) }
                return
            }
            if waitingForAdmission { return }
            let end = bytes.withUnsafeReadableBytes { HTTPFraming.headEnd(in: $0, from: searched - 3) }
            guard let end else {
                searched = bytes.readableBytes
                if searched > HTTPFraming.maxHeadSize { handOff(context) }
                return
            }
            searched = 0
            switch begin(context, head: bytes.getSlice(at: bytes.readerIndex, length: end)!) {
            case nil: return
            case false?:
                handOff(context)
                return
            case true?: break
            }
            bytes.moveReaderIndex(forwardBy: end)
            inbound = bytes
        }
    }

    /// Starts relaying the request whose head this is; `false` when it is not one to relay, `nil`
    /// when it waits for admission.
    private func begin(_ context: ChannelHandlerContext, head headBuffer: ByteBuffer) -> Bool? {
        let bytes = Array(headBuffer.readableBytesView)
        if clientAddress == nil { clientAddress = context.channel.remoteAddress }
        guard let request = Self.request(bytes, remote: clientAddress) else { return false }
        if let gate = policy.admission, let resumeAdmission, !gate(resumeAdmission), policy.waitsForCapture(request) {
            // The head stays in `inbound`, read again once admitted.
            waitingForAdmission = true
            pause()
            return nil
        }
        var length = 0
        var keepClient = true
        var connectionTokens: [String] = []
        let accepted = bytes.withUnsafeBytes { raw -> Bool in
            var lengthSeen = false
            for field in request.head.fields {
                if HTTPFraming.name(raw, field, is: "content-length") {
                    guard let value = HTTPFraming.contentLength(raw, field), !lengthSeen || value == length else { return false }
                    length = value
                    lengthSeen = true
                } else if HTTPFraming.name(raw, field, is: "transfer-encoding") || HTTPFraming.name(raw, field, is: "expect")
                    || HTTPFraming.name(raw, field, is: "upgrade")
                {
                    return false
                } else if HTTPFraming.name(raw, field, is: "connection") {
                    connectionTokens += HTTPFraming.tokens(raw, field)
                }
            }
            return true
        }
        guard accepted, request.method != .CONNECT, !connectionTokens.contains("upgrade") else { return false }
        if connectionTokens.contains("close") { keepClient = false }
        idle.requestBegan()
        if length > maxBody {
            idle.requestReceived()
            answer(.payloadTooLarge, context: context)
            return true
        }
        let route: HTTPRelayRoute
        switch policy.route(request) {
        case nil: return false
        case .answer(let respond)?:
            answering = Answering(request: request, respond: respond, keepClient: keepClient, body: context.channel.allocator.buffer(capacity: length), remaining: length)
            return true
        case .relay(let relay)?:
            route = relay
        }
        var sent = context.channel.allocator.buffer(capacity: bytes.count + min(length, 1 << 16))
        Self.writeUpstreamHead(bytes, request.head, target: route.target, dropping: route.dropping, connectionTokens: connectionTokens, into: &sent)
        let exchange = Exchange(
            policyExchange: route.exchange, pool: route.upstream, method: request.method,
            target: route.target ?? request.uri, observesBodies: route.observesBodies,
            observesAnswerHeaders: route.observesAnswerHeaders,
            keepClient: keepClient, sent: sent, bodyLength: length
        )
        current = exchange
        if let link = route.upstream.takeIdle(on: context.eventLoop) {
            exchange.reused = true
            attach(link, to: exchange)
        } else {
            dial(for: exchange, on: context.eventLoop)
        }
        if length == 0 { requestComplete(exchange) }
        return true
    }

    private static func request(_ bytes: [UInt8], remote: SocketAddress?) -> RelayedRequest? {
        bytes.withUnsafeBytes { raw -> RelayedRequest? in
            guard let head = HTTPFraming.Head.parse(raw, end: raw.count) else { return nil }
            // HTTP/1.1 only: 1.0's keep-alive rules are left to the codec.
            guard raw[head.third].elementsEqual("HTTP/1.1".utf8) else { return nil }
            let method = HTTPMethod(rawValue: String(decoding: UnsafeRawBufferPointer(rebasing: raw[head.first]), as: UTF8.self))
            let uri = String(decoding: UnsafeRawBufferPointer(rebasing: raw[head.second]), as: UTF8.self)
            return RelayedRequest(
                method: method, uri: uri, remoteAddress: remote, bytes: bytes, head: head
            )
        }
    }

    private func attach(_ link: ByteRelayLink, to exchange: Exchange) {
        exchange.link = link
        link.handler.value.owner = self
        link.handler.value.write(exchange.sent)
        if exchange.requestDone { link.handler.value.flush() }
    }

    private func dial(for exchange: Exchange, on loop: any EventLoop) {
        exchange.pool.connect(on: loop).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let link):
                guard self.current === exchange else {
                    link.channel.close(promise: nil)
                    return
                }
                self.attach(link, to: exchange)
                self.flushUpstream()
            case .failure(let error):
                guard self.current === exchange else { return }
                self.fail(exchange, HTTPClientError.unreachable(error, request: exchange.requestLine))
            }
        }
    }

    private func send(_ slice: ByteBuffer, in exchange: Exchange) {
        var slice = slice
        exchange.link?.handler.value.write(slice)
        exchange.sent.writeBuffer(&slice)
    }

    /// The request's last bytes are written; they are observed before they are flushed, so that
    /// nothing they cause (an answer on another connection, on another loop) is observed first.
    private func requestComplete(_ exchange: Exchange) {
        exchange.requestDone = true
        idle.requestReceived()
        let body = exchange.observesBodies ? exchange.sent.getSlice(at: exchange.sent.readerIndex + exchange.bodyStart, length: exchange.sent.readableBytes - exchange.bodyStart)! : ByteBuffer()
        policy.requestForwarded(exchange.policyExchange, body: body)
        exchange.link?.handler.value.flush()
    }

    /// Takes the body of a request the policy answers; once whole, asks for the answer.
    private func gather(_ answering: Answering, context: ChannelHandlerContext) {
        if answering.remaining > 0, var bytes = inbound, bytes.readableBytes > 0 {
            var slice = bytes.readSlice(length: min(answering.remaining, bytes.readableBytes))!
            inbound = bytes
            idle.bodyProgressed()
            answering.remaining -= slice.readableBytes
            answering.body.writeBuffer(&slice)
        }
        guard answering.remaining == 0 else { return }
        idle.requestReceived()
        let closed = context.eventLoop.makePromise(of: Void.self)
        answering.clientClosed = closed
        var request = HTTPRequest(
            head: answering.request.fullHead, body: Array(answering.body.readableBytesView), remote: answering.request.remote, eventLoop: context.eventLoop
        )
        request.remoteAddress = answering.request.remoteAddress
        answering.respond(request, closed.futureResult).hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
            // Failed rather than left pending: nothing waits on a request that is over.
            closed.fail(ChannelError.alreadyClosed)
            guard self.answering === answering, let context = self.context else { return }
            self.answering = nil
            let response = (try? result.get()) ?? HTTPResponse(status: .internalServerError, closeConnection: true)
            self.answer(response, keepAlive: answering.keepClient && !response.closeConnection, context: context)
        }
    }

    /// Hands the connection to the HTTP codec behind, with the bytes not relayed.
    private func handOff(_ context: ChannelHandlerContext) {
        done = true
        let rest = inbound
        inbound = nil
        let readWanted = readHeld || paused
        paused = false
        readHeld = false
        if let rest, rest.readableBytes > 0 {
            context.fireChannelRead(wrapInboundOut(rest))
            context.fireChannelReadComplete()
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        if readWanted { context.read() }
    }

    // MARK: The upstream's side

    func upstreamRead(_ buffer: ByteBuffer) {
        guard let exchange = current, let context else { return }
        exchange.answer.received = true
        var buffer = buffer
        while current === exchange {
            if exchange.answer.framing == nil {
                guard readAnswerHead(&buffer, exchange, context: context) else { return }
            } else if buffer.readableBytes > 0 {
                relayAnswerBody(&buffer, exchange, context: context)
            }
            if exchange.answer.complete {
                // Bytes past the answer's end: the connection is not one to keep.
                if buffer.readableBytes > 0 { exchange.answer.upstreamKeepAlive = false }
                answerComplete(exchange, context: context)
                return
            }
            if buffer.readableBytes == 0 { return }
        }
    }

    func upstreamReadComplete() {
        context?.flush()
    }

    func upstreamClosed(_ error: (any Error)?) {
        guard let exchange = current, let context else { return }
        if exchange.answer.framing == .untilClose {
            exchange.answer.upstreamKeepAlive = false
            answerComplete(exchange, context: context)
            return
        }
        if !exchange.answer.received, exchange.reused, !exchange.retried {
            // Most likely closed while idle, as the request went: once more on a new connection.
            exchange.retried = true
            exchange.reused = false
            exchange.link = nil
            dial(for: exchange, on: context.eventLoop)
            return
        }
        let tls = error.map(TLSClientSettings.isHandshakeFailure) ?? false
        let detail = error.map(SocketErrorText.describe) ?? "the server closed the connection before a whole answer"
        fail(exchange, HTTPClientError(tls ? .tls : .closed, request: exchange.requestLine, detail: detail))
    }

    /// Reads the answer's head from `buffer` once it is whole, and sends it on; `false` while it is not.
    private func readAnswerHead(_ buffer: inout ByteBuffer, _ exchange: Exchange, context: ChannelHandlerContext) -> Bool {
        if exchange.answer.headBytes == nil {
            exchange.answer.headBytes = buffer
        } else {
            exchange.answer.headBytes!.writeBuffer(&buffer)
        }
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        var bytes = exchange.answer.headBytes!
        let end = bytes.withUnsafeReadableBytes { HTTPFraming.headEnd(in: $0, from: exchange.answer.searched - 3) }
        guard let end else {
            exchange.answer.searched = bytes.readableBytes
            if bytes.readableBytes > HTTPFraming.maxHeadSize {
                fail(exchange, HTTPClientError(.closed, request: exchange.requestLine, detail: "an answer head longer than \(HTTPFraming.maxHeadSize) bytes"))
            }
            return false
        }
        let head = Array(bytes.readSlice(length: end)!.readableBytesView)
        buffer = bytes
        exchange.answer.headBytes = nil
        exchange.answer.searched = 0
        guard let parsed = Self.answerHead(head, exchange: exchange) else {
            fail(exchange, HTTPClientError(.closed, request: exchange.requestLine, detail: "an answer that is not HTTP/1.1 the relay can follow"))
            return false
        }
        if parsed.informational { return true }
        exchange.answer.status = parsed.status
        exchange.answer.framing = parsed.framing
        exchange.answer.upstreamKeepAlive = parsed.keepAlive
        if case .length(let length) = parsed.framing { exchange.answer.remaining = length }
        let keepClient = exchange.keepClient && parsed.framing != .untilClose && exchange.requestDone
        var out = context.channel.allocator.buffer(capacity: head.count + 20)
        Self.writeClientHead(head, parsed.head, named: parsed.connectionTokens, closing: !keepClient, into: &out)
        context.write(wrapOutboundOut(out), promise: nil)
        exchange.answer.forwarded = true
        if exchange.observesBodies { exchange.answer.body = context.channel.allocator.buffer(capacity: 0) }
        if exchange.observesAnswerHeaders {
            exchange.answer.headers = head.withUnsafeBytes { raw in
                parsed.head.fields.map { field in
                    (String(decoding: UnsafeRawBufferPointer(rebasing: raw[field.name]), as: UTF8.self),
                     String(decoding: UnsafeRawBufferPointer(rebasing: raw[field.value]), as: UTF8.self))
                }
            }
        }
        if case .length(0) = parsed.framing { exchange.answer.complete = true }
        return true
    }

    private func relayAnswerBody(_ buffer: inout ByteBuffer, _ exchange: Exchange, context: ChannelHandlerContext) {
        switch exchange.answer.framing {
        case .length:
            let take = min(exchange.answer.remaining, buffer.readableBytes)
            let slice = buffer.readSlice(length: take)!
            context.write(wrapOutboundOut(slice), promise: nil)
            keep(slice, in: exchange)
            exchange.answer.remaining -= take
            if exchange.answer.remaining == 0 { exchange.answer.complete = true }
        case .chunked:
            var chunks = exchange.answer.chunks
            var data: [Range<Int>] = []
            let consumed: Int
            do {
                consumed = try buffer.withUnsafeReadableBytes { raw in try chunks.read(raw) { data.append($0) } }
            } catch {
                // What the server sent still goes, as it came: the client judges it, as it would
                // without the proxy; the connection ends after it.
                context.write(wrapOutboundOut(buffer.readSlice(length: buffer.readableBytes)!), promise: nil)
                fail(exchange, HTTPClientError(.closed, request: exchange.requestLine, detail: "a chunked answer the relay cannot follow: \(error)"))
                return
            }
            exchange.answer.chunks = chunks
            for range in data { keep(buffer.getSlice(at: buffer.readerIndex + range.lowerBound, length: range.count)!, in: exchange) }
            context.write(wrapOutboundOut(buffer.readSlice(length: consumed)!), promise: nil)
            if chunks.isDone { exchange.answer.complete = true }
        case .untilClose:
            let slice = buffer.readSlice(length: buffer.readableBytes)!
            context.write(wrapOutboundOut(slice), promise: nil)
            keep(slice, in: exchange)
        case nil:
            break
        }
    }

    /// Keeps the start of the answer's body for observing, up to the limit.
    private func keep(_ slice: ByteBuffer, in exchange: Exchange) {
        guard exchange.observesBodies, var body = exchange.answer.body else { return }
        exchange.answer.body = nil  // unique while it grows
        var slice = slice
        if body.readableBytes + slice.readableBytes > maxBody {
            exchange.answer.truncated = true
            if let part = slice.readSlice(length: maxBody - body.readableBytes) {
                var part = part
                body.writeBuffer(&part)
            }
        } else {
            body.writeBuffer(&slice)
        }
        exchange.answer.body = body
    }

    private func answerComplete(_ exchange: Exchange, context: ChannelHandlerContext) {
        current = nil
        // An answer before the request's end (a 413) leaves the rest of its body unread.
        let keepClient = exchange.keepClient && exchange.answer.framing != .untilClose && exchange.requestDone
        if let link = exchange.link {
            link.handler.value.owner = nil
            if exchange.answer.upstreamKeepAlive && exchange.requestDone { exchange.pool.putBack(link) } else { link.channel.close(promise: nil) }
        }
        if !exchange.requestDone {
            let relayed = exchange.sent.readableBytes - exchange.bodyStart
            policy.requestCut(exchange.policyExchange, relayed: relayed, announced: relayed + exchange.bodyRemaining)
        }
        // Observed before its last bytes are flushed (see requestComplete).
        policy.responseForwarded(
            exchange.policyExchange, status: exchange.answer.status, headers: exchange.answer.headers, body: exchange.answer.body ?? ByteBuffer(),
            truncated: exchange.answer.truncated
        )
        if keepClient {
            context.flush()
        } else {
            done = true
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
        guard keepClient, !done else { return }
        idle.requestEnded()
        resume()
        process(context)
    }

    /// No whole answer: the policy's answer when the client has had nothing yet, and the
    /// connection closes.
    private func fail(_ exchange: Exchange, _ error: HTTPClientError) {
        current = nil
        done = true
        exchange.link?.handler.value.close()
        let answer = policy.upstreamFailed(exchange.policyExchange, error, on: context?.eventLoop ?? MultiThreadedEventLoopGroup.singleton.next())
        guard let context else { return }
        if exchange.answer.forwarded {
            // What was relayed reaches the client before the close.
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
            return
        }
        answer.hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
            let response = (try? result.get()) ?? HTTPResponse(status: .badGateway, closeConnection: true)
            self.answer(response, context: context)
        }
    }

    /// An answer the relay makes itself (or the policy); the connection closes after it unless kept.
    private func answer(_ response: HTTPResponse, keepAlive: Bool = false, context: ChannelHandlerContext) {
        let keepAlive = keepAlive && !response.resetConnection
        if !keepAlive { done = true }
        guard context.channel.isActive else { return }
        if response.resetConnection, let socket = context.channel as? any SocketOptionProvider {
            let channel = context.channel
            socket.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        var out = context.channel.allocator.buffer(capacity: 256 + response.body.count)
        response.write(to: &out, keepAlive: keepAlive)
        guard keepAlive else {
            context.writeAndFlush(wrapOutboundOut(out)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            return
        }
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        idle.requestEnded()
        resume()
        process(context)
    }

    // MARK: Heads

    /// The request line as it came (or with `target`), then the end-to-end fields as they came
    /// (the client's `Host` included), less `dropping` and those the `Connection` field names.
    private static func writeUpstreamHead(
        _ bytes: [UInt8], _ head: HTTPFraming.Head, target: String?, dropping: [String], connectionTokens: [String], into out: inout ByteBuffer
    ) {
        let dropped = (dropping + connectionTokens).map { Array($0.utf8) }
        bytes.withUnsafeBytes { raw in
            if let target {
                out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[head.first]))
                out.writeString(" " + target + " ")
                out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[head.third]))
                out.writeStaticString("\r\n")
            } else {
                out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[0..<head.fieldsStart]))
            }
            for field in head.fields {
                if HTTPFraming.isHopByHop(raw, field) || HTTPFraming.name(raw, field, isAnyOf: dropped) { continue }
                out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[field.line]))
                out.writeStaticString("\r\n")
            }
            out.writeStaticString("\r\n")
        }
    }

    private struct AnswerHead {
        var head: HTTPFraming.Head
        var status: HTTPResponseStatus
        var framing: HTTPFraming.Body
        var keepAlive: Bool
        /// A 1xx other than 101: another head follows.
        var informational: Bool
        /// What its `Connection` fields name (dropped with them on the way to the client).
        var connectionTokens: [String]
    }

    private static func answerHead(_ bytes: [UInt8], exchange: Exchange) -> AnswerHead? {
        bytes.withUnsafeBytes { raw -> AnswerHead? in
            guard let head = HTTPFraming.Head.parse(raw, end: raw.count), head.second.count == 3 else { return nil }
            let version = raw[head.first]
            guard version.elementsEqual("HTTP/1.1".utf8) || version.elementsEqual("HTTP/1.0".utf8) else { return nil }
            var code = 0
            for index in head.second {
                guard raw[index] >= 0x30, raw[index] <= 0x39 else { return nil }
                code = code * 10 + Int(raw[index] - 0x30)
            }
            // A 101 answers an upgrade, which the relay never sends.
            guard code >= 100, code != 101 else { return nil }
            var length: Int?
            var chunked = false
            var encoded = false
            var tokens: [String] = []
            for field in head.fields {
                if HTTPFraming.name(raw, field, is: "content-length") {
                    guard let value = HTTPFraming.contentLength(raw, field), length == nil || length == value else { return nil }
                    length = value
                } else if HTTPFraming.name(raw, field, is: "transfer-encoding") {
                    encoded = true
                    chunked = HTTPFraming.tokens(raw, field).last == "chunked"
                } else if HTTPFraming.name(raw, field, is: "connection") {
                    tokens += HTTPFraming.tokens(raw, field)
                }
            }
            let framing: HTTPFraming.Body
            if exchange.method == .HEAD || code == 204 || code == 304 || code < 200 {
                framing = .length(0)
            } else if encoded {
                framing = chunked ? .chunked : .untilClose
            } else if let length {
                framing = .length(length)
            } else {
                framing = .untilClose
            }
            let http11 = version.elementsEqual("HTTP/1.1".utf8)
            let keepAlive = http11 ? !tokens.contains("close") : tokens.contains("keep-alive")
            return AnswerHead(
                head: head, status: HTTPResponseStatus(statusCode: code), framing: framing, keepAlive: keepAlive && framing != .untilClose,
                informational: code < 200, connectionTokens: tokens
            )
        }
    }

    /// The status line as it came, then its fields less the hop-by-hop ones but those that frame
    /// the body (which is relayed as it came), and `Connection: close` when the client's
    /// connection ends with this answer.
    /// `named`: the tokens of its `Connection` fields.
    private static func writeClientHead(_ bytes: [UInt8], _ head: HTTPFraming.Head, named tokens: [String], closing: Bool, into out: inout ByteBuffer) {
        let named = tokens.map { Array($0.utf8) }
        bytes.withUnsafeBytes { raw in
            out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[0..<head.fieldsStart]))
            for field in head.fields {
                let framing = HTTPFraming.name(raw, field, is: "content-length") || HTTPFraming.name(raw, field, is: "transfer-encoding")
                if !framing {
                    if HTTPFraming.isHopByHop(raw, field) { continue }
                    if !named.isEmpty, HTTPFraming.name(raw, field, isAnyOf: named) { continue }
                }
                out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[field.line]))
                out.writeStaticString("\r\n")
            }
            if closing { out.writeStaticString("Connection: close\r\n") }
            out.writeStaticString("\r\n")
        }
    }
}

@available(*, unavailable)
extension HTTPRelayFront: Sendable {}

