#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SiotapCommands

exit(await SiotapCLI.run(Array(CommandLine.arguments.dropFirst())))
