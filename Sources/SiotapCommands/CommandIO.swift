#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Where a command reads and writes. The process's standard streams by default; tests put a
/// ``CommandIO/Capture`` in the task-local ``current`` to run commands in-process.
public struct CommandIO: Sendable {
    public var write: @Sendable (String) -> Void
    /// Bytes as they are (`siotap ca export --der`).
    public var writeBytes: @Sendable ([UInt8]) -> Void
    public var writeError: @Sendable (String) -> Void
    /// Lines of standard input, or `nil` when it is a terminal (nothing piped).
    public var readLines: @Sendable () -> [String]?
    /// Whether standard output is a terminal that takes colors (`NO_COLOR` unset).
    public var colors: Bool
    /// Whether standard output is a terminal (readable lines by default), colors or not.
    public var terminal: Bool
    public var environment: [String: String]

    @TaskLocal public static var current = CommandIO.standard

    public static var standard: CommandIO {
        let environment = ProcessEnvironment.all()
        return CommandIO(
            write: { text in writeFully(STDOUT_FILENO, text) },
            writeBytes: { bytes in writeFully(STDOUT_FILENO, bytes) },
            writeError: { text in writeFully(STDERR_FILENO, text) },
            readLines: {
                guard isatty(STDIN_FILENO) == 0 else { return nil }
                var lines: [String] = []
                while let line = readLine(strippingNewline: true) { lines.append(line) }
                return lines
            },
            colors: isatty(STDOUT_FILENO) != 0 && environment["NO_COLOR"].map(\.isEmpty) ?? true
                && environment["TERM"] != "dumb",
            terminal: isatty(STDOUT_FILENO) != 0,
            environment: environment
        )
    }

    /// A recording of what a command wrote, for tests.
    public final class Capture: Sendable {
        private let storage = Mutex<(out: String, err: String)>(("", ""))
        private let bytes = Mutex<[UInt8]>([])
        public init() {}
        public var output: String { storage.withLock { $0.out } }
        /// What was written with ``CommandIO/writeBytes``.
        public var outputBytes: [UInt8] { bytes.withLock { $0 } }
        public var errorOutput: String { storage.withLock { $0.err } }

        /// `terminal`: as if standard output were one (by default when `colors`).
        public func io(stdin: [String]? = nil, colors: Bool = false, terminal: Bool? = nil, environment: [String: String] = [:]) -> CommandIO {
            CommandIO(
                write: { text in self.storage.withLock { $0.out += text } },
                writeBytes: { bytes in self.bytes.withLock { $0 += bytes } },
                writeError: { text in self.storage.withLock { $0.err += text } },
                readLines: { stdin },
                colors: colors,
                terminal: terminal ?? colors,
                environment: environment
            )
        }
    }

    private static func writeFully(_ descriptor: Int32, _ text: String) {
        writeFully(descriptor, Array(text.utf8))
    }

    private static func writeFully(_ descriptor: Int32, _ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { bytes in
            guard bytes.count > 0 else { return }
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }
}

enum ProcessEnvironment {
    static func all() -> [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }
}
