/// A command that could not do its work, as opposed to one given wrong arguments: it ends with one
/// line on stderr, no usage text, and an exit code that says which kind of failure it was.
struct CommandFailure: Error, CustomStringConvertible {
    enum Kind {
        /// The work failed at run time: a server unreachable or refusing, a port taken (exit 1).
        case runtime
        /// An input file or frame is unreadable or malformed (exit 2).
        case badInput
        /// The server to work against could not be reached at all (exit 3).
        case unreachable
    }

    var kind: Kind
    var description: String

    init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }

    /// A run-time failure.
    init(_ description: String) { self.init(.runtime, description) }

    var exitCode: Int32 {
        switch kind {
        case .runtime: SiotapCLI.Exit.checkFailed
        case .badInput: SiotapCLI.Exit.usage
        case .unreachable: SiotapCLI.Exit.unreachable
        }
    }
}
