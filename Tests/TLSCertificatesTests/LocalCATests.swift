import Foundation
import SwiftASN1
import Testing
import X509

@testable import TLSCertificates

/// The local CA and the leaves it mints, checked by openssl (a peer siotap did not write): the
/// files' modes, a CA never replaced, a leaf that verifies against the CA for the names asked.
@Suite("The local CA")
struct LocalCATests {
    static func directory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("siotap-ca-\(UUID().uuidString)").path
    }

    static func openssl(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static func mode(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1
    }

    @Test("Made private (directory 0700, key 0600), read back the same, never replaced")
    func createAndLoad() throws {
        let directory = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ca = try LocalCA.create(in: directory, hostName: "test-host")
        #expect(try Self.mode(directory) == 0o700)
        #expect(try Self.mode(directory + "/" + LocalCA.keyFile) == 0o600)
        #expect(ca.subject.contains("siotap local CA test-host"))
        #expect(try LocalCA.load(from: directory).fingerprintSHA256() == ca.fingerprintSHA256())
        do { _ = try LocalCA.create(in: directory, hostName: "again"); Issue.record("a CA was replaced") } catch { #expect(error.code == .exists) }
        let empty = Self.directory()
        do { _ = try LocalCA.load(from: empty); Issue.record("no CA loaded") } catch { #expect(error.code == .missing) }
    }

    @Test("A key that is not the certificate's is refused")
    func mismatchedKey() throws {
        let first = Self.directory(), second = Self.directory()
        defer { for path in [first, second] { try? FileManager.default.removeItem(atPath: path) } }
        _ = try LocalCA.create(in: first, hostName: "a")
        _ = try LocalCA.create(in: second, hostName: "b")
        try FileManager.default.removeItem(atPath: first + "/" + LocalCA.keyFile)
        try FileManager.default.copyItem(atPath: second + "/" + LocalCA.keyFile, toPath: first + "/" + LocalCA.keyFile)
        do { _ = try LocalCA.load(from: first); Issue.record("a foreign key was taken") } catch { #expect(error.code == .invalid) }
    }

    @Test("A leaf verifies against the CA with openssl, for its DNS names and IP addresses, for 30 days at most")
    func leaf() throws {
        let directory = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ca = try LocalCA.create(in: directory, hostName: "test")
        let identity = try ca.mintLeaf(for: ["chat.example", "127.0.0.1"])
        #expect(identity.certificateChainPEM.count == 2)
        let leafPath = directory + "/leaf.pem"
        try identity.certificateChainPEM[0].write(toFile: leafPath, atomically: true, encoding: .utf8)
        let caPath = directory + "/" + LocalCA.certificateFile
        for name in ["-verify_hostname", "-verify_ip"] {
            let value = name == "-verify_hostname" ? "chat.example" : "127.0.0.1"
            let verified = try Self.openssl(["verify", "-CAfile", caPath, "-purpose", "sslserver", name, value, leafPath])
            #expect(verified.status == 0, "\(verified.output)")
        }
        let other = try Self.openssl(["verify", "-CAfile", caPath, "-verify_hostname", "other.example", leafPath])
        #expect(other.status != 0)
        let leaf = try Certificate(pemEncoded: identity.certificateChainPEM[0])
        #expect(leaf.notValidAfter.timeIntervalSince(leaf.notValidBefore) <= LocalCA.leafLifetime + 3600)
        #expect(throws: LocalCAError.self) { try ca.mintLeaf(for: []) }
    }

    @Test("A certificate's summary: subject, issuer and expiry; garbage is no certificate")
    func summary() throws {
        let directory = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ca = try LocalCA.create(in: directory, hostName: "test")
        let leaf = try Certificate(pemEncoded: try ca.mintLeaf(for: ["chat.example"]).certificateChainPEM[0])
        var serializer = DER.Serializer()
        try serializer.serialize(leaf)
        let summary = try #require(CertificateSummary(derEncoded: serializer.serializedBytes))
        #expect(summary.subject.contains("chat.example"))
        #expect(summary.issuer.contains("siotap local CA test"))
        #expect(summary.notValidAfter == leaf.notValidAfter)
        #expect(CertificateSummary(derEncoded: [0x30, 0x03, 0x02, 0x01, 0x01]) == nil)
    }
}
