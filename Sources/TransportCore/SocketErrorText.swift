#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import NIOCore
import NIOPosix

/// A socket failure said the way a person reads it ("connection refused", "address already in
/// use"), without NIO's call sites and errno numbers.
public enum SocketErrorText {
    public static func describe(_ error: any Error) -> String {
        if let connection = error as? NIOConnectionError {
            if let first = connection.connectionErrors.first { return "cannot connect (\(describe(first.error)))" }
            if connection.dnsAError != nil || connection.dnsAAAAError != nil { return "cannot resolve \(connection.host)" }
        }
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)).lowercased() }
        if let channel = error as? ChannelError {
            switch channel {
            case .connectTimeout: return "the connection timed out"
            case .eof, .inputClosed, .outputClosed, .alreadyClosed, .ioOnClosedChannel: return "the connection closed"
            default: return "\(channel)"
            }
        }
        return "\(error)"
    }
}

extension Channel {
    /// The peer as `host:port`, `?` when the socket no longer says.
    public var remoteDescription: String {
        remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
    }
}
