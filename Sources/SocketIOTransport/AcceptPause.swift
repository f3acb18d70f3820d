#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import Synchronization
import TransportCore
import TransportTLS
import WebSocketTransport
import HTTPClientTransport

/// Stops a listener from accepting for a moment when the process is out of file descriptors
/// (EMFILE, ENFILE), and says so once on stderr. Left to itself, NIO retries the failing
/// `accept` as fast as the socket stays readable (its read stays pending after the error), which
/// is at once: two cores of CPU while the clients that hold the descriptors stay. Paused, waiting
/// clients stay in the backlog and are accepted when descriptors free up (within `pause`).
final class AcceptPause: ChannelInboundHandler, Sendable {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel

    static let pause = TimeAmount.milliseconds(100)
    private static let told = Atomic<Bool>(false)

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let error = error as? IOError, error.errnoCode == EMFILE || error.errnoCode == ENFILE else {
            context.fireErrorCaught(error)
            return
        }
        if !Self.told.exchange(true, ordering: .relaxed) {
            let text = "siotap: out of file descriptors (\(error.errnoCode == EMFILE ? "EMFILE" : "ENFILE")): new connections wait until some close; "
                + "raise the limit with `ulimit -n` (now \(FileDescriptorLimit.current.map(String.init) ?? "?"))\n"
            let bytes = Array(text.utf8)
            _ = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
        }
        let channel = context.channel
        channel.setOption(.autoRead, value: false).whenSuccess {
            channel.eventLoop.scheduleTask(in: Self.pause) { channel.setOption(.autoRead, value: true).whenFailure { _ in } }
        }
        context.fireErrorCaught(error)
    }
}

/// The soft limit on open files, raised to the hard one at start: a proxy holds two descriptors
/// per client, and the common default of 1,024 runs out at a few hundred idle clients.
public enum FileDescriptorLimit {
    public static var current: Int? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        return Int(clamping: limit.rlim_cur)
    }

    /// Raises the soft limit to the hard one; returns the limit now in force.
    @discardableResult
    public static func raiseToHard() -> Int? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { return Int(clamping: raised.rlim_cur) }
        }
        return Int(clamping: limit.rlim_cur)
    }
}
