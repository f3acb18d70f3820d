#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import SiotapCommands

// Diagnostics go to standard error, so they never mix with records on standard output.
LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = SiotapLogging.level(from: ProcessInfoEnvironment.value("SIOTAP_LOG_LEVEL"))
    return handler
}
exit(await SiotapCLI.run(Array(CommandLine.arguments.dropFirst())))
