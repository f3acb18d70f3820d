import Foundation
import PeerSupport
import SiotapTesting
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
