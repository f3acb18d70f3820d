import DemoApps
public import SocketIOServer
@_exported public import TrafficReplay
import TrafficCapture

/// Replays captured sessions in a test, against the built-in server or a running one.
///
/// Swift Testing:
/// ```swift
/// @Test func loginStillWorks() async throws {
///     let result = try await SiotapTesting.replay("fixtures/chat-websocket.jsonl", app: .chat, jwtSecret: secret)
///     #expect(result.isEqual, "\(result)")
/// }
/// ```
/// XCTest:
/// ```swift
/// func testLogin() async throws {
///     let result = try await SiotapTesting.replay("fixtures/chat-websocket.jsonl", app: .chat, jwtSecret: secret)
///     XCTAssertTrue(result.isEqual, result.description)
/// }
/// ```
public enum SiotapTesting {
    /// The built-in server's apps.
    public enum App: Sendable {
        case chat
        case conformance
        /// Your own: configure the server (namespaces, middleware, handlers) before it starts.
        case custom(@Sendable (SocketIOServer) -> Void)
    }

    public struct InvalidFixture: Error, CustomStringConvertible {
        public let description: String
    }

    /// Starts the built-in server with `app` on a free loopback port, replays `fixture` against
    /// it, stops it, and returns the report (its `description` is the readable diff).
    ///
    /// - Parameters:
    ///   - jwtSecret: re-mints the capture's tokens (times shifted to now), and is the chat app's secret.
    ///   - ignoring: JSON paths left out of the comparison (`args[0].timestamp`, `*.id`).
    public static func replay(
        _ fixture: String, app: App = .chat, jwtSecret: String? = nil, ignoring: [String] = [], timeoutMilliseconds: Int = 3_000
    ) async throws -> Replayer.Report {
        let server = SocketIOServer()
        switch app {
        case .chat: ChatApp.install(on: server, secret: jwtSecret ?? ChatApp.defaultSecret)
        case .conformance: ConformanceApp.install(on: server)
        case .custom(let configure): configure(server)
        }
        let port = try await server.start(host: "127.0.0.1", port: 0)
        defer { Task { await server.shutdown() } }
        return try await replay(fixture, host: "127.0.0.1", port: port, jwtSecret: jwtSecret, ignoring: ignoring, timeoutMilliseconds: timeoutMilliseconds)
    }

    /// Replays `fixture` against a server that is already running.
    public static func replay(
        _ fixture: String, host: String, port: Int, jwtSecret: String? = nil, ignoring: [String] = [], timeoutMilliseconds: Int = 3_000
    ) async throws -> Replayer.Report {
        let records: [CaptureRecord]
        do { records = try CaptureReader.readAll(path: fixture).records } catch { throw InvalidFixture(description: "\(error)") }
        guard !records.isEmpty else { throw InvalidFixture(description: "\(fixture) holds no records") }
        return await Replayer.run(
            records, options: .init(host: host, port: port, ignoredPaths: ignoring, timeoutMilliseconds: timeoutMilliseconds, jwtSecret: jwtSecret)
        )
    }
}
