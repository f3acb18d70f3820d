import NIOCore
import NIOHTTP1
import NIOWebSocket
import TransportCore
import TransportTLS
import WebSocketTransport
import HTTPClientTransport

/// A server connection's pipeline in its two phases: HTTP/1.1, kept alive, then (after any of its
/// requests, not only the first) a WebSocket or a relay. The connection is wrapped in one
/// `NIOAsyncChannel` for its whole life, so its parts are one type whatever the phase; the
/// switch happens on the event loop in one go, as NIO's typed upgrader does it for first requests.
enum ConnectionPhase {
    enum Inbound: Sendable {
        case http(HTTPServerRequestPart)
        case frame(WebSocketFrame)
    }

    enum Outbound: Sendable {
        case http(HTTPServerResponsePart)
        case frame(WebSocketFrame)
    }

    /// The HTTP handlers, with requests and responses as ``Inbound``/``Outbound`` at the back.
    static func configureHTTP(_ pipeline: ChannelPipeline.SynchronousOperations) throws {
        try pipeline.addHandlers(httpCodec())
        try pipeline.addHandler(httpParts())
    }

    private static func httpCodec() -> [any ChannelHandler] {
        [
            HTTPResponseEncoder(),
            // Bytes after an upgrade request stay in the decoder, and go to the new protocol when it leaves.
            ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)),
            HTTPServerPipelineHandler(),
            HTTPServerProtocolErrorHandler(),
        ]
    }

    /// HTTP again, inside an intercepted tunnel: `tls` (its handlers, socket side first) and then
    /// the HTTP codec go in front of the parts handler that stayed.
    static func restartHTTP(_ pipeline: ChannelPipeline.SynchronousOperations, tls: [any ChannelHandler]) throws {
        let parts = try pipeline.handler(type: HTTPParts.self)
        for handler in tls + httpCodec() { try pipeline.addHandler(handler, position: .before(parts)) }
    }

    /// Answers a CONNECT with 200 and takes HTTP off the pipeline; `install` puts what carries the
    /// tunnel at the position it is given. The 200 goes out as bytes (the tunnel has no HTTP body).
    static func switchToTunnel(
        _ pipeline: ChannelPipeline.SynchronousOperations,
        install: (ChannelPipeline.SynchronousOperations.Position) throws -> Void
    ) throws {
        try leaveHTTP(pipeline, answer: { encoder in
            // From the encoder's context: toward the socket, past the encoder.
            try pipeline.context(handler: encoder).writeAndFlush(NIOAny(ByteBuffer(string: "HTTP/1.1 200 Connection established\r\n\r\n")), promise: nil)
        }, install: install)
    }

    /// Writes the 101, takes HTTP off the pipeline and puts NIO's frame codec in its place; frames
    /// then come to the async side as ``Inbound/frame(_:)``.
    static func switchToWebSocket(_ pipeline: ChannelPipeline.SynchronousOperations, responseHeaders: HTTPHeaders, maxFrameSize: Int) throws {
        let httpParts = try pipeline.handler(type: HTTPParts.self)
        try switchProtocols(pipeline, responseHeaders: responseHeaders) { position in
            let decoder = ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: maxFrameSize))
            try pipeline.addHandler(decoder, position: position)
            // A frame the decoder refuses (too large, bad header) closes with the code that says why.
            try pipeline.addHandler(WebSocketProtocolErrorHandler(), position: .after(decoder))
            try pipeline.addHandler(WebSocketFrameEncoder(), position: position)
            try pipeline.addHandler(frameParts(), position: .after(httpParts))
            pipeline.removeHandler(httpParts, promise: nil)
        }
    }

    /// Writes the 101 and takes HTTP off the pipeline; `attach` puts the relay's handler at the
    /// position it is given, right behind the socket once HTTP is gone. The async side then sees
    /// nothing more: it waits for the connection to close.
    static func switchToRelay(
        _ pipeline: ChannelPipeline.SynchronousOperations,
        responseHeaders: HTTPHeaders,
        attach: (ChannelPipeline.SynchronousOperations.Position) throws -> Void
    ) throws {
        try switchProtocols(pipeline, responseHeaders: responseHeaders, install: attach)
    }

    /// `install` adds the new protocol's handlers at the position it is given (behind the HTTP
    /// decoder, so that when the decoder leaves, the bytes it held go to them).
    private static func switchProtocols(
        _ pipeline: ChannelPipeline.SynchronousOperations,
        responseHeaders: HTTPHeaders,
        install: (ChannelPipeline.SynchronousOperations.Position) throws -> Void
    ) throws {
        try leaveHTTP(pipeline, answer: { _ in
            let head = HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: responseHeaders)
            try pipeline.context(handlerType: HTTPParts.self).writeAndFlush(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
        }, install: install)
    }

    /// Takes HTTP off the pipeline: `answer` writes the last response while the encoder is still
    /// there, and `install` puts the next protocol behind the decoder, which hands it what it held.
    private static func leaveHTTP(
        _ pipeline: ChannelPipeline.SynchronousOperations,
        answer: (HTTPResponseEncoder) throws -> Void,
        install: (ChannelPipeline.SynchronousOperations.Position) throws -> Void
    ) throws {
        let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
        let encoder = try pipeline.handler(type: HTTPResponseEncoder.self)
        pipeline.removeHandler(try pipeline.handler(type: HTTPServerPipelineHandler.self), promise: nil)
        pipeline.removeHandler(try pipeline.handler(type: HTTPServerProtocolErrorHandler.self), promise: nil)
        try answer(encoder)
        pipeline.removeHandler(encoder, promise: nil)
        try install(.after(decoder))
        pipeline.removeHandler(decoder, promise: nil)
    }

    /// One phase's parts as ``Inbound`` and ``Outbound``: the handler nearest the async side.
    final class Parts<In, Out>: ChannelDuplexHandler, RemovableChannelHandler {
        typealias InboundIn = In
        typealias InboundOut = Inbound
        typealias OutboundIn = Outbound
        typealias OutboundOut = Out

        private let wrap: (In) -> Inbound
        private let unwrap: (Outbound) -> Out?

        init(wrap: @escaping (In) -> Inbound, unwrap: @escaping (Outbound) -> Out?) {
            self.wrap = wrap
            self.unwrap = unwrap
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.fireChannelRead(wrapInboundOut(wrap(unwrapInboundIn(data))))
        }

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            guard let part = unwrap(unwrapOutboundIn(data)) else {
                // A part of the other phase: the async side wrote after the switch.
                promise?.fail(ChannelError.inappropriateOperationForState)
                return
            }
            context.write(wrapOutboundOut(part), promise: promise)
        }
    }

    typealias HTTPParts = Parts<HTTPServerRequestPart, HTTPServerResponsePart>

    static func httpParts() -> HTTPParts {
        HTTPParts(wrap: { .http($0) }, unwrap: { if case .http(let part) = $0 { part } else { nil } })
    }

    static func frameParts() -> Parts<WebSocketFrame, WebSocketFrame> {
        Parts(wrap: { .frame($0) }, unwrap: { if case .frame(let frame) = $0 { frame } else { nil } })
    }

    /// An upgraded connection's frames, read on from where its HTTP requests stopped.
    struct Frames: AsyncSequence {
        typealias Element = WebSocketFrame
        var parts: NIOAsyncChannelInboundStream<Inbound>.AsyncIterator

        func makeAsyncIterator() -> Iterator { Iterator(parts: parts) }

        struct Iterator: AsyncIteratorProtocol {
            var parts: NIOAsyncChannelInboundStream<Inbound>.AsyncIterator

            mutating func next() async throws -> WebSocketFrame? {
                while let part = try await parts.next() {
                    if case .frame(let frame) = part { return frame }
                }
                return nil
            }
        }
    }
}
