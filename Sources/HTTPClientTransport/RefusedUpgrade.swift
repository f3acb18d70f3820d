import NIOCore
public import NIOHTTP1

/// A server's answer to a WebSocket upgrade it did not accept: what the client is owed, as it
/// came (its body cut at ``RefusedUpgrade/largestBody``).
public struct RefusedUpgrade: Sendable {
    public var head: HTTPResponseHead
    public var body: [UInt8]
    /// More than ``largestBody`` came; only its start is here.
    public var truncated: Bool

    /// Refusals are short ("Bad request", a 404 page): a larger body is cut.
    public static let largestBody = 64 << 10
    /// A body that has not ended by then is taken as it is.
    static let patience = TimeAmount.seconds(10)
}

/// Gathers a refusal's head and body after the upgrade handler has stepped aside, then closes the
/// connection (it is not kept: it was dialled for the upgrade).
final class RefusalReader: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<RefusedUpgrade>
    private var head: HTTPResponseHead?
    private var body: [UInt8] = []
    private var truncated = false
    private var deadline: Scheduled<Void>?
    private var done = false

    init(promise: EventLoopPromise<RefusedUpgrade>) {
        self.promise = promise
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: RefusedUpgrade.patience) {
            let (reader, context) = loopBound.value
            reader.finish(context: context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body(let buffer):
            let room = RefusedUpgrade.largestBody - body.count
            if buffer.readableBytes > room { truncated = true }
            body += buffer.readableBytesView.prefix(max(0, room))
            if truncated { finish(context: context) }
        case .end:
            finish(context: context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        guard !done else { return }
        done = true
        deadline?.cancel()
        promise.fail(ChannelError.ioOnClosedChannel)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(context: context)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(context: context)
    }

    private func finish(context: ChannelHandlerContext) {
        guard !done else { return }
        done = true
        deadline?.cancel()
        deadline = nil
        if let head {
            promise.succeed(RefusedUpgrade(head: head, body: body, truncated: truncated))
        } else {
            promise.fail(ChannelError.eof)
        }
        context.close(promise: nil)
    }
}
