import NIOCore
import NIOSSL
import NIOTLS
import TransportCore
import TransportTLS
import WebSocketTransport
import HTTPClientTransport

/// The first handler of an intercepted tunnel: looks at the client's first byte and sets the
/// tunnel up for what it speaks. TLS (a handshake record, 22) gets a certificate for the name in
/// its ClientHello; anything else is taken as plain HTTP (a `ws://` client tunnels too).
final class TunnelProtocolDetector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    private let interception: TunnelInterception

    init(_ interception: TunnelInterception) {
        self.interception = interception
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return }
        let pipeline = context.pipeline.syncOperations
        do {
            if first == 22 {
                try pipeline.addHandler(ByteToMessageHandler(SNIHandler { [interception] result in
                    Self.terminateTLS(result, interception: interception, channel: context.channel)
                }), position: .after(self))
            } else if first >= UInt8(ascii: "A") && first <= UInt8(ascii: "Z") {
                try ConnectionPhase.restartHTTP(pipeline, tls: [])
            } else {
                let shown = buffer.readableBytesView.prefix(8).map { String($0, radix: 16) }.joined(separator: " ")
                interception.unreadable(context.channel.remoteDescription, "neither TLS nor HTTP came through the tunnel (first bytes: \(shown))")
                let refusal = ByteBuffer(string: "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                let channel = context.channel
                context.writeAndFlush(NIOAny(refusal)).whenComplete { _ in channel.close(promise: nil) }
                return
            }
        } catch {
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(data)
        pipeline.removeHandler(context: context, promise: nil)
    }

    /// Once the ClientHello is read: the certificate for its name, then TLS and HTTP behind it.
    private static func terminateTLS(_ result: SNIResult, interception: TunnelInterception, channel: any Channel) -> EventLoopFuture<Void> {
        let name: String
        let sent: String?
        switch result {
        case .hostname(let hostname): (name, sent) = (hostname, hostname)
        case .fallback: (name, sent) = (interception.defaultName, nil)
        }
        do {
            let context = try interception.certificates.context(for: name)
            let sniffer = ServerHelloSniffer()
            let tls = NIOSSLServerHandler(context: context)
            let watcher = TLSHandshakeWatcher(failed: interception.handshakeFailed) { [established = interception.established] _ in
                established(TLSHandshakeDetails(
                    version: TLSHandshakeDetails.versionName(tls.tlsVersion),
                    cipher: sniffer.cipherSuite.map(ServerHelloSniffer.name(ofCipherSuite:)), serverName: sent
                ))
            }
            try ConnectionPhase.restartHTTP(channel.pipeline.syncOperations, tls: [sniffer, tls, watcher])
            return channel.eventLoop.makeSucceededVoidFuture()
        } catch {
            interception.handshakeFailed(channel.remoteDescription, "no certificate for \(name): \(error)")
            return channel.eventLoop.makeFailedFuture(error)
        }
    }
}
