public import Foundation

/// Where the repository and its peers' venv are, from this file's place in the tree.
public enum PeerPaths {
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    public static let python = root.appendingPathComponent(".venv-peers/bin/python").path

    /// Runs a script of `scripts/reference` with the venv's Python and returns its standard output.
    public static func runPython(_ script: String, arguments: [String] = []) throws -> Data {
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw PeerFailure(description: "\(python) is missing: run scripts/setup-peers.sh (scripts/test.sh does)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [root.appendingPathComponent("scripts/reference/\(script)").path] + arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw PeerFailure(description: "\(script) exited \(process.terminationStatus)", output: String(decoding: data, as: UTF8.self))
        }
        return data
    }

    public struct PeerFailure: Error, CustomStringConvertible {
        public let description: String
        /// What the script printed before it failed (empty when it could not run).
        public var output = ""
    }
}
