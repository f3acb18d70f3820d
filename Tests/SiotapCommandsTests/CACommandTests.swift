import Foundation
import Testing
import TLSCertificates

@testable import SiotapCommands

/// `siotap ca`: the CA made in a temporary directory, then read by OpenSSL (an independent X.509
/// implementation; the product itself never runs it).
@Suite("siotap ca", .serialized)
struct CACommandTests {
    func temporaryDirectory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("siotap-ca-\(UUID().uuidString)").path
    }

    /// Runs openssl with `arguments`, returns its standard output; nil when it fails.
    func openssl(_ arguments: [String], input: Data? = nil) throws -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        let output = Pipe(), errors = Pipe(), stdin = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(input) }
        try stdin.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return process.terminationStatus == 0 ? text : nil
    }

    @Test("init makes a P-256 CA for ten years that OpenSSL reads as a CA; the key is 0600; a second init refuses")
    func initAndRefuse() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (code, out, err) = await siotap(["ca", "init", "--dir", dir])
        #expect(code == 0, "\(err)")
        #expect(out.contains("siotap local CA"))
        let keyMode = try FileManager.default.attributesOfItem(atPath: dir + "/ca-key.pem")[.posixPermissions] as? Int
        #expect(keyMode == 0o600)

        let text = try #require(try openssl(["x509", "-in", dir + "/ca.pem", "-noout", "-text"]))
        #expect(text.contains("CA:TRUE, pathlen:0"))
        #expect(text.contains("Certificate Sign, CRL Sign"))
        #expect(text.contains("prime256v1"))
        #expect(text.contains("ecdsa-with-SHA256"))
        #expect(text.contains("CN = siotap local CA \(ProcessInfo.processInfo.hostName)"))
        // Self-signed, and its signature checks out.
        #expect(try openssl(["verify", "-CAfile", dir + "/ca.pem", dir + "/ca.pem"])?.contains("OK") == true)
        // Ten years (give or take the hour back for clocks behind, and leap days).
        let dates = try #require(try openssl(["x509", "-in", dir + "/ca.pem", "-noout", "-startdate", "-enddate"]))
        let years = dates.split(separator: "\n").compactMap { $0.split(separator: " ").dropLast().last.flatMap { Int($0) } }
        #expect(years.count == 2 && years[1] - years[0] == 10, "\(dates)")
        // The key is the certificate's.
        let keyPublic = try openssl(["pkey", "-in", dir + "/ca-key.pem", "-pubout"])
        let certificatePublic = try openssl(["x509", "-in", dir + "/ca.pem", "-noout", "-pubkey"])
        #expect(keyPublic != nil && keyPublic == certificatePublic)

        let before = try Data(contentsOf: URL(fileURLWithPath: dir + "/ca-key.pem"))
        let again = await siotap(["ca", "init", "--dir", dir])
        #expect(again.code == 1)
        #expect(again.err.contains("already exists"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/ca-key.pem")) == before, "the key was not replaced")
    }

    @Test("The CA directory is made 0700, and an existing one narrowed to it; the key is never wider than 0600, whatever the umask")
    func privateDirectory() async throws {
        let parent = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let dir = parent + "/ca"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let previous = umask(0)
        let code = await siotap(["ca", "init", "--dir", dir]).code
        umask(previous)
        #expect(code == 0)
        func mode(_ path: String) throws -> Int? { try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int }
        #expect(try mode(dir) == 0o700)
        #expect(try mode(dir + "/ca-key.pem") == 0o600)
        #expect(try mode(dir + "/ca.pem") == 0o644)

        let fresh = parent + "/deeper/ca"
        #expect(await siotap(["ca", "init", "--dir", fresh]).code == 0)
        #expect(try mode(fresh) == 0o700)
    }

    @Test("show and export agree with OpenSSL: subject, SHA-256 fingerprint, dates; PEM and DER")
    func showAndExport() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(await siotap(["ca", "init", "--dir", dir]).code == 0)

        let shown = await siotap(["ca", "show", "--dir", dir, "--json"])
        #expect(shown.code == 0)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(shown.out.utf8)) as? [String: String])
        let fingerprint = try #require(try openssl(["x509", "-in", dir + "/ca.pem", "-noout", "-fingerprint", "-sha256"]))
        #expect(fingerprint.trimmingCharacters(in: .whitespacesAndNewlines) == "sha256 Fingerprint=" + (json["sha256_fingerprint"] ?? ""))
        #expect(json["subject"]?.contains("siotap local CA") == true)
        #expect(json["not_after"]?.hasSuffix("Z") == true)

        let pem = await siotap(["ca", "export", "--dir", dir])
        #expect(pem.out == (try String(contentsOfFile: dir + "/ca.pem", encoding: .utf8)))
        let capture = CommandIO.Capture()
        let code = await CommandIO.$current.withValue(capture.io()) { await SiotapCLI.run(["ca", "export", "--dir", dir, "--der"]) }
        #expect(code == 0)
        let derFromPEM = try #require(try openssl(["x509", "-in", dir + "/ca.pem", "-outform", "DER", "-out", dir + "/ca.der"]))
        _ = derFromPEM
        #expect(capture.outputBytes == Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/ca.der"))))
        #expect(!capture.output.contains("PRIVATE"), "export never prints the key")
    }

    @Test("Without a CA, show and export say how to make one (exit 1); the default directory is $SIOTAP_HOME/ca")
    func missing() async throws {
        let dir = temporaryDirectory()
        let shown = await siotap(["ca", "show", "--dir", dir])
        #expect(shown.code == 1)
        #expect(shown.err.hasPrefix("siotap ca show: no CA in"))
        #expect(shown.err.contains("siotap ca init"))
        #expect(LocalCA.defaultDirectory(environment: ["SIOTAP_HOME": "/x", "HOME": "/h"]) == "/x/ca")
        #expect(LocalCA.defaultDirectory(environment: ["HOME": "/h"]) == "/h/.siotap/ca")
    }
}
