#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import SiotapCommands
import SocketIOTransport

// Diagnostics go to standard error, so they never mix with records on standard output.
LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = SiotapLogging.level(from: ProcessInfoEnvironment.value("SIOTAP_LOG_LEVEL"))
    return handler
}
// A proxy holds two descriptors per client: the common soft limit of 1,024 runs out at a few
// hundred idle clients, while the hard limit is usually far higher.
FileDescriptorLimit.raiseToHard()
exit(await SiotapCLI.run(Array(CommandLine.arguments.dropFirst())))
