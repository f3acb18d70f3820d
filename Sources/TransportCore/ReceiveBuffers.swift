public import NIOCore

extension AdaptiveRecvByteBufferAllocator {
    /// For connections that live long and mostly carry small messages (WebSockets, relayed or
    /// not; a server's kept-alive HTTP): NIO keeps each connection's receive buffer between
    /// reads, at the size it starts with (2 kB) until reads outgrow it, so that size is held by
    /// every idle connection. Starting at 512 bytes saves 1.5 kB a connection (3 kB a relayed
    /// session, measured by `Benchmarks/sessions.sh`); bigger reads grow it as before.
    public static let startingSmall = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 65536)
}
