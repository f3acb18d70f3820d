import NIOCore
import NIOWebSocket
public import SocketIOProtocol
import Synchronization
import TransportCore

/// One WebSocket, as whole messages: fragments joined, pings answered, close handshake done.
///
/// ``send(_:)`` never waits: messages queue for a writer task, so a session actor can send
/// without being held up by a slow peer. ``messages`` ends when the peer closes or the socket fails.
public final class WebSocketConnection: Sendable {
    public let messages: AsyncStream<WebSocketMessage>
    public let remote: String
    private let outbound: AsyncStream<WebSocketFrame>.Continuation
    private let maskOutbound: Bool
    private let queued: QueuedCount
    /// Held while a group of messages is queued, so that another thread's cannot come between.
    private let queueing = Mutex(())

    /// Messages sent and not yet written to the socket: a peer that stops reading makes it grow.
    public var queuedMessages: Int { queued.value.load(ordering: .relaxed) }

    final class QueuedCount: Sendable {
        let value = Atomic<Int>(0)
    }

    package struct Streams {
        let inbound: AsyncStream<WebSocketMessage>.Continuation
        let outbound: AsyncStream<WebSocketFrame>
        /// Client side: every frame, control frames included, goes out masked (RFC 6455 §5.1).
        let maskOutbound: Bool
        let queued: QueuedCount

        func control(_ opcode: WebSocketOpcode, _ data: ByteBuffer) -> WebSocketFrame {
            WebSocketFrame(fin: true, opcode: opcode, maskKey: maskOutbound ? .random() : nil, data: data)
        }
    }

    private init(
        messages: AsyncStream<WebSocketMessage>, outbound: AsyncStream<WebSocketFrame>.Continuation, remote: String, maskOutbound: Bool, queued: QueuedCount
    ) {
        self.messages = messages
        self.outbound = outbound
        self.remote = remote
        self.maskOutbound = maskOutbound
        self.queued = queued
    }

    package static func make(remote: String, maskOutbound: Bool) -> (WebSocketConnection, Streams) {
        let (inboundStream, inboundContinuation) = AsyncStream<WebSocketMessage>.makeStream()
        let (outboundStream, outboundContinuation) = AsyncStream<WebSocketFrame>.makeStream()
        let queued = QueuedCount()
        let connection = WebSocketConnection(messages: inboundStream, outbound: outboundContinuation, remote: remote, maskOutbound: maskOutbound, queued: queued)
        return (connection, Streams(inbound: inboundContinuation, outbound: outboundStream, maskOutbound: maskOutbound, queued: queued))
    }

    /// Queues a message.
    public func send(_ message: WebSocketMessage) {
        queueing.withLock { _ in enqueue(message) }
    }

    private func enqueue(_ message: WebSocketMessage) {
        let frame: WebSocketFrame
        switch message {
        case .text(let text): frame = WebSocketFrame(fin: true, opcode: .text, maskKey: maskKey(), data: ByteBuffer(string: text))
        case .binary(let bytes): frame = WebSocketFrame(fin: true, opcode: .binary, maskKey: maskKey(), data: ByteBuffer(bytes: bytes))
        }
        queued.value.add(1, ordering: .relaxed)
        if case .terminated = outbound.yield(frame) { queued.value.subtract(1, ordering: .relaxed) }
    }

    /// Queues messages one after another, nothing of another sender's between them: a Socket.IO
    /// packet's text and its binary attachments, which the peer must read together.
    public func send(_ messages: [WebSocketMessage]) {
        queueing.withLock { _ in
            for message in messages { enqueue(message) }
        }
    }

    /// Sends a close frame and ends the connection once it is written.
    public func close(code: WebSocketErrorCode = .normalClosure) {
        var data = ByteBuffer()
        data.write(webSocketErrorCode: code)
        let frame = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: maskKey(), data: data)
        outbound.yield(frame)
        outbound.finish()
    }

    private func maskKey() -> WebSocketMaskingKey? { maskOutbound ? .random() : nil }

    /// Runs the connection until either side closes: reads `frames` here, writes through `write`
    /// from a task of its own, and calls `stop` (which must end `frames`) once this side has closed.
    package static func run<Frames: AsyncSequence>(
        frames: Frames,
        write: @escaping @Sendable (WebSocketFrame) async throws -> Void,
        stop: @escaping @Sendable () -> Void,
        streams: Streams,
        maxMessageSize: Int
    ) async where Frames.Element == WebSocketFrame {
        let inboundContinuation = streams.inbound
        let (control, controlContinuation) = AsyncStream<WebSocketFrame>.makeStream()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                // One writer: queued messages and control replies, in order.
                try? await withThrowingTaskGroup(of: Void.self) { writers in
                    writers.addTask {
                        for await frame in streams.outbound {
                            try await write(frame)
                            if frame.opcode == .text || frame.opcode == .binary { streams.queued.value.subtract(1, ordering: .relaxed) }
                        }
                    }
                    writers.addTask { for await frame in control { try await write(frame) } }
                    try await writers.next()
                    writers.cancelAll()
                }
                stop()
            }
            var assembling: (opcode: WebSocketOpcode, bytes: [UInt8])?
            do {
                reading: for try await frame in frames {
                    switch frame.opcode {
                    case .text, .binary:
                        var data = frame.unmaskedData
                        let bytes = data.readBytes(length: data.readableBytes) ?? []
                        if frame.fin {
                            inboundContinuation.yield(message(frame.opcode, bytes))
                        } else {
                            assembling = (frame.opcode, bytes)
                        }
                    case .continuation:
                        guard var partial = assembling else { break reading }
                        var data = frame.unmaskedData
                        partial.bytes += data.readBytes(length: data.readableBytes) ?? []
                        guard partial.bytes.count <= maxMessageSize else {
                            var reason = ByteBuffer()
                            reason.write(webSocketErrorCode: .messageTooLarge)
                            controlContinuation.yield(streams.control(.connectionClose, reason))
                            break reading
                        }
                        if frame.fin {
                            inboundContinuation.yield(message(partial.opcode, partial.bytes))
                            assembling = nil
                        } else {
                            assembling = partial
                        }
                    case .ping:
                        controlContinuation.yield(streams.control(.pong, frame.unmaskedData))
                    case .connectionClose:
                        var data = frame.unmaskedData
                        let code = data.readSlice(length: 2) ?? ByteBuffer()
                        controlContinuation.yield(streams.control(.connectionClose, code))
                        break reading
                    default:
                        break
                    }
                }
            } catch {}
            inboundContinuation.finish()
            // The peer closed (or the socket failed): give the writer a moment to send the close
            // reply, then stop it.
            controlContinuation.finish()
            group.addTask { try? await Task.sleep(for: .milliseconds(50)) }
            await group.next()
            group.cancelAll()
        }
    }

    private static func message(_ opcode: WebSocketOpcode, _ bytes: [UInt8]) -> WebSocketMessage {
        // Invalid UTF-8 in a text frame is kept visible rather than dropped.
        opcode == .text ? .text(String(decoding: bytes, as: UTF8.self)) : .binary(bytes)
    }
}
