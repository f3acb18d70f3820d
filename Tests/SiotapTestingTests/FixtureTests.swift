import Foundation
import PeerSupport
import SiotapTesting
import SocketIOClient
import Synchronization
import TrafficCapture
import Testing
import XCTest

/// The secret the fixtures' tokens were signed with (scripts/make_fixtures.py); redacted, they
/// are re-minted with it at replay.
let fixtureSecret = "interop-secret-long-enough-for-hs256!"
let fixtures = PeerPaths.root.appendingPathComponent("fixtures")

@Suite("Every fixture replays against the built-in server", .serialized)
struct FixtureTests {
    static var names: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: fixtures.path)) ?? []).filter { $0.hasSuffix(".jsonl") }.sorted()
    }

    @Test("No differences", arguments: names)
    func replays(name: String) async throws {
        let app: SiotapTesting.App = name.hasPrefix("conformance") ? .conformance : .chat
        let result = try await SiotapTesting.replay(fixtures.appendingPathComponent(name).path, app: app, jwtSecret: fixtureSecret)
        #expect(result.isEqual, "\(result)")
        #expect(result.connections.reduce(0) { $0 + $1.matched } > 0)
    }

    @Test("There are fixtures of every kind the issue asks for")
    func kinds() {
        for name in ["chat-websocket", "chat-polling", "chat-upgrade", "chat-refused-tokens", "conformance-binary", "chat-eio3"] {
            #expect(Self.names.contains(name + ".jsonl"), "\(name) missing")
        }
    }

    @Test("A copy with one recorded reply changed fails with exactly that difference")
    func changedReply() async throws {
        let original = try String(contentsOf: fixtures.appendingPathComponent("conformance-binary.jsonl"), encoding: .utf8)
        let changed = original.replacingOccurrences(of: #""event":"message-back","args":[{"$binary":"AQID"}"#, with: #""event":"message-back","args":[{"$binary":"AQIE"}"#)
        #expect(changed != original)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("siotap-changed-\(UUID().uuidString).jsonl").path
        try changed.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try await SiotapTesting.replay(path, app: .conformance, jwtSecret: fixtureSecret)
        #expect(!result.isEqual)
        let changes = result.connections.flatMap(\.changed)
        #expect(changes.count == 1)
        #expect(changes.first?.key == "EVENT / message-back")
        #expect(changes.first?.path == "args[0]")
        #expect(result.description.contains("changed"))
    }
}

/// The same from XCTest, as the README shows it.
final class FixtureXCTests: XCTestCase {
    func testChatOverWebSocket() async throws {
        let result = try await SiotapTesting.replay(fixtures.appendingPathComponent("chat-websocket.jsonl").path, app: .chat, jwtSecret: fixtureSecret)
        XCTAssertTrue(result.isEqual, result.description)
    }
}

@Suite("siotap mock plays the server side", .serialized)
struct MockServerTests {
    static func records(_ name: String) throws -> [CaptureRecord] {
        try CaptureReader.readAll(path: fixtures.appendingPathComponent(name).path).records
    }

    @Test("Replaying a fixture against its own mock finds no difference", arguments: FixtureTests.names)
    func replayAgainstMock(name: String) async throws {
        let reports = Mutex<[String]>([])
        let mock = MockServer(try Self.records(name), options: .init(maxDelay: 0.2)) { line in reports.withLock { $0.append(line) } }
        let port = try await mock.start()
        defer { Task { await mock.shutdown() } }
        let result = try await SiotapTesting.replay(fixtures.appendingPathComponent(name).path, host: "127.0.0.1", port: port)
        #expect(result.isEqual, "\(result)")
        #expect(reports.withLock { $0 }.isEmpty)
    }

    @Test("An unmatched packet is reported, and with strict it ends the session")
    func unmatched() async throws {
        let reports = Mutex<[String]>([])
        let mock = MockServer(try Self.records("conformance-binary.jsonl"), options: .init(strict: true)) { line in
            reports.withLock { $0.append(line) }
        }
        let port = try await mock.start()
        defer { Task { await mock.shutdown() } }
        let client = SocketIOClient(host: "127.0.0.1", port: port)
        try await client.open()
        client.emit("not-recorded", ["x"])
        var ended = false
        for await _ in client.packets {}
        ended = true
        #expect(ended)
        #expect(reports.withLock { $0 }.first?.contains("unmatched EVENT / not-recorded") == true)
    }
}
