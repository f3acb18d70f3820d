import ArgumentParser

/// The `siotap` command tree.
public struct Siotap: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "siotap",
        abstract: "A record/replay debugging proxy for Socket.IO.",
        discussion: """
            Decodes Engine.IO (v3, v4) and Socket.IO (v4, v5) traffic on both transports, explains the \
            JWTs in handshakes, and writes what it sees as JSONL (capture format v1).

            Exit codes: 0 fine; 1 a check failed (a token did not verify, a replay differs) or the work \
            failed at run time (a server unreachable or refusing, a port taken): one line on stderr \
            says which; 2 a usage error (with the usage text) or malformed input.
            """,
        version: SiotapVersion.current,
        subcommands: [DemoCommand.self, ProxyCommand.self, ServeCommand.self, ReplayCommand.self, MockCommand.self, BenchCommand.self, DecodeCommand.self, JWTCommand.self, RedactCommand.self, CACommand.self, ImportCommand.self, SniffCommand.self, ViewCommand.self, DiagnoseCommand.self, DoctorCommand.self, LoadCommand.self]
    )

    public init() {}
}

public enum SiotapVersion {
    public static let current = "0.1.0"
}

/// The process's entry point, kept here so that tests run the very same code in-process.
public enum SiotapCLI {
    /// Exit codes that mean something to scripts.
    public enum Exit {
        public static let ok: Int32 = 0
        /// A check failed, or the work failed at run time.
        public static let checkFailed: Int32 = 1
        /// A usage error, or malformed input.
        public static let usage: Int32 = 2
        /// The server to work against could not be reached (`siotap replay --target`).
        public static let unreachable: Int32 = 3
    }

    /// The names from the root to `command` (`siotap ca show`), for one-line failures.
    static func path(to command: any ParsableCommand.Type, from node: any ParsableCommand.Type) -> [String]? {
        let name = node.configuration.commandName ?? "siotap"
        if node == command { return [name] }
        for child in node.configuration.subcommands {
            if let rest = path(to: command, from: child) { return [name] + rest }
        }
        return nil
    }

    /// Parses and runs `arguments` (without the program name) and returns the exit code.
    public static func run(_ arguments: [String]) async -> Int32 {
        let io = CommandIO.current
        var commandName = "siotap"
        do {
            var command = try Siotap.parseAsRoot(InspectorOptions.addressingBareUI(arguments))
            if let path = Self.path(to: type(of: command), from: Siotap.self) { commandName = path.joined(separator: " ") }
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            return Exit.ok
        } catch let failure as CommandFailure {
            io.writeError("\(commandName): \(failure.description)\n")
            return failure.exitCode
        } catch {
            let code = Siotap.exitCode(for: error)
            let message = Siotap.fullMessage(for: error)
            if code == .success {
                if !message.isEmpty { io.write(message + "\n") }
                return Exit.ok
            }
            if let exit = error as? ExitCode { return exit.rawValue }
            if !message.isEmpty { io.writeError(message + "\n") }
            // ArgumentParser's usage errors are EX_USAGE (64); siotap documents 2 for all of them.
            return Exit.usage
        }
    }
}
