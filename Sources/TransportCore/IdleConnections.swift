package import NIOCore
import Synchronization

/// A kept-alive connection a pool can hold while it is idle.
package protocol IdleConnection: AnyObject, Sendable {
    var eventLoop: any EventLoop { get }
    var isOpen: Bool { get }
    /// Closes it: it will not be used again.
    func retire()
}

/// A pool's idle connections, oldest first, each with when it was put back: taken (on a loop, or
/// any), put back (or retired when the pool is full), and retired once idle for `timeout`. One
/// sweep for the pool, not a timer per put-back: a busy proxy puts back thousands of connections
/// a second, and each timer would sit in its loop's queue for seconds (NIO cancels a timer by
/// searching its loop's whole queue). Taking and putting back are inlinable: every relayed
/// request does both, and unspecialized they looked up generic metadata each time.
package final class IdleConnections<Connection: IdleConnection>: Sendable {
    @usableFromInline let state = Mutex<(connections: [(connection: Connection, since: NIODeadline)], sweeping: RepeatedTask?)>(([], nil))
    @usableFromInline let capacity: Int
    @usableFromInline let timeout: TimeAmount

    package init(capacity: Int, timeout: TimeAmount) {
        self.capacity = capacity
        self.timeout = timeout
    }

    /// The most recently put back connection that is still open, on `loop` (any loop when nil);
    /// closed ones found on the way are dropped.
    @inlinable
    package func take(on loop: (any EventLoop)?) -> Connection? {
        state.withLock { state in
            while let index = state.connections.lastIndex(where: { loop == nil || $0.connection.eventLoop === loop }) {
                let connection = state.connections.remove(at: index).connection
                if connection.isOpen { return connection }
                connection.retire()
            }
            return nil
        }
    }

    /// Back after a whole exchange; retired instead when the pool is full or it is closed.
    @inlinable
    package func putBack(_ connection: Connection) {
        let kept = state.withLock { state in
            guard state.connections.count < capacity, connection.isOpen else { return false }
            state.connections.append((connection, .now()))
            if state.sweeping == nil {
                let every = TimeAmount.nanoseconds(timeout.nanoseconds / 4)
                state.sweeping = connection.eventLoop.scheduleRepeatedTask(initialDelay: every, delay: every) { [weak self] _ in
                    self?.retireExpired()
                }
            }
            return true
        }
        if !kept { connection.retire() }
    }

    @usableFromInline
    func retireExpired() {
        let deadline = NIODeadline.now() - timeout
        let expired = state.withLock { state in
            let count = state.connections.prefix { $0.since < deadline }.count
            defer { state.connections.removeFirst(count) }
            return state.connections.prefix(count).map(\.connection)
        }
        for connection in expired { connection.retire() }
    }

    /// Retires every idle connection and stops the sweep.
    package func close() {
        let (connections, sweeping) = state.withLock { state in
            defer { state = ([], nil) }
            return state
        }
        sweeping?.cancel()
        for (connection, _) in connections { connection.retire() }
    }
}
