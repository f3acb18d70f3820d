import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

@testable import HTTPClientTransport
@testable import SocketIOTransport
@testable import TransportCore
@testable import TransportTLS
@testable import WebSocketTransport

/// The pool against ``HTTPServer`` on loopback: connections reused one request at a time, and a
/// connection the server closed replaced without the caller seeing it.
@Suite("HTTP connection pool")
struct HTTPConnectionPoolTests {
    /// Answers with the client's address (one per connection); `/close` closes after answering.
    struct Echo: HTTPServerDelegate {
        func shouldUpgrade(_ head: HTTPRequestHead) async -> HTTPHeaders? { nil }
        func handleWebSocket(_ connection: WebSocketConnection, head: HTTPRequestHead) async {}
        func handle(_ request: HTTPRequest) async -> HTTPResponse {
            HTTPResponse(status: .ok, headers: [:], body: Array(request.remote.utf8), closeConnection: request.uri == "/close")
        }
    }

    func withServer(idleTimeout: TimeAmount = .seconds(4), _ body: (HTTPConnectionPool) async throws -> Void) async throws {
        let server = try await HTTPServer.bind(.init(host: "127.0.0.1", port: 0), delegate: Echo())
        let serving = Task { await server.run(delegate: Echo()) }
        let pool = HTTPConnectionPool(host: "127.0.0.1", port: server.port, idleTimeout: idleTimeout)
        do {
            try await body(pool)
        } catch {
            pool.close()
            await server.close()
            serving.cancel()
            throw error
        }
        pool.close()
        await server.close()
        serving.cancel()
    }

    func remote(_ pool: HTTPConnectionPool, _ path: String = "/", on eventLoop: (any EventLoop)? = nil) async throws -> String {
        let response = try await pool.send(head: HTTPRequestHead(version: .http1_1, method: .GET, uri: path), body: [], on: eventLoop)
        #expect(response.status == .ok)
        return String(decoding: response.body, as: UTF8.self)
    }

    @Test("Sequential requests share one connection; one the server closes is replaced")
    func reuse() async throws {
        try await withServer { pool in
            var remotes: [String] = []
            for _ in 0..<10 { remotes.append(try await remote(pool)) }
            #expect(Set(remotes).count == 1, "\(Set(remotes))")
            let closing = try await remote(pool, "/close")
            #expect(closing == remotes[0])
            let after = try await remote(pool)
            #expect(after != remotes[0], "a closed connection is not reused")
        }
    }

    @Test("Cancelling an exchange that is over leaves its connection alone: it is back in the pool, maybe carrying another")
    func lateCancel() async throws {
        try await withServer { pool in
            let pending = pool.exchange(head: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/"), body: [])
            let first = String(decoding: try await pending.response.get().body, as: UTF8.self)
            // The client whose request that was goes away now (its connection closes): too late to
            // drop anything. Before the fix this closed the pooled connection.
            pending.cancel()
            try await Task.sleep(for: .milliseconds(50))
            #expect(try await remote(pool) == first, "the connection was closed by a cancel that came after its exchange")
        }
    }

    @Test("Requests in flight together each get a connection, and then all are kept")
    func concurrent() async throws {
        try await withServer { pool in
            let first = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<3 { group.addTask { try await remote(pool) } }
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
            #expect(first.count >= 1 && first.count <= 3)
            var later = Set<String>()
            for _ in 0..<6 { later.insert(try await remote(pool)) }
            #expect(later.isSubset(of: first), "no new connection while idle ones are kept")
        }
    }

    @Test("A request for a loop gets a connection on that loop only, and each loop keeps its own")
    func eventLoopAffinity() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let (first, second) = (group.next(), group.next())
        #expect(first !== second)
        try await withServer { pool in
            let onFirst = try await remote(pool, on: first)
            let onSecond = try await remote(pool, on: second)
            #expect(onFirst != onSecond, "the first loop's idle connection is not lent to the second")
            for _ in 0..<3 {
                #expect(try await remote(pool, on: first) == onFirst)
                #expect(try await remote(pool, on: second) == onSecond)
            }
        }
        try await group.shutdownGracefully()
    }

    @Test("A connection idle for longer than the timeout is closed; one in steady use is kept")
    func idleExpiry() async throws {
        // A second of idleness: a test process stalled by a busy machine stays well within it.
        try await withServer(idleTimeout: .milliseconds(1_000)) { pool in
            var previous = try await remote(pool)
            var used = ContinuousClock.now
            var kept = 0
            // Used every 100 ms for a second and a half: never idle for a second. A test process
            // stalled past the timeout (a busy CI machine) may see the connection go, rightly:
            // each use is compared with the one before, when that was well within the timeout.
            for _ in 0..<15 {
                try await Task.sleep(for: .milliseconds(100))
                let idle = ContinuousClock.now - used
                let current = try await remote(pool)
                used = .now
                if idle < .milliseconds(500) {
                    #expect(current == previous, "idle \(idle)")
                    kept += 1
                }
                previous = current
            }
            #expect(kept > 0, "the process was stalled for the whole steady use")
            // Idle for over a second, and the sweep (every 100 ms) has had time to see it.
            try await Task.sleep(for: .milliseconds(1_600))
            #expect(try await remote(pool) != previous)
        }
    }
}
