import Foundation

/// Where the repository and its peers' venv are, from this file's place in the tree.
enum PeerPaths {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let python = root.appendingPathComponent(".venv-peers/bin/python").path

    /// Runs a script of `scripts/reference` with the venv's Python and returns its standard output.
    static func runPython(_ script: String) throws -> Data {
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw PeerMissing(description: "\(python) is missing: run scripts/setup-peers.sh (scripts/test.sh does)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [root.appendingPathComponent("scripts/reference/\(script)").path]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw PeerMissing(description: "\(script) exited \(process.terminationStatus)") }
        return data
    }

    struct PeerMissing: Error, CustomStringConvertible {
        let description: String
    }
}
