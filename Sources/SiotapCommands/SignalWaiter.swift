import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The write end of the newest waiter's pipe, for the C handler (which may touch nothing else).
nonisolated(unsafe) private var signalPipeWriteEnd: Int32 = -1

/// SIGINT and SIGTERM, caught from the moment it is made (make it before announcing that the
/// program is ready, so a signal sent right after the announcement is not fatal).
///
/// The handler is installed with `sigaction` before `init` returns and writes the signal's number
/// to a pipe a thread reads. (A libdispatch signal source, used before, registered itself on
/// another thread after `init` had set the signal to be ignored: a signal sent in between was
/// lost, and `siotap demo --ui` then waited forever for the Ctrl-C its test had sent.)
final class SignalWaiter {
    private let stream: AsyncStream<Int32>

    init() {
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        self.stream = stream
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else {
            // No pipe, no waiting: the signals keep their default, ending the program.
            continuation.finish()
            return
        }
        let readEnd = ends[0]
        signalPipeWriteEnd = ends[1]
        for signalNumber in [SIGINT, SIGTERM] {
            var action = sigaction()
            #if canImport(Glibc)
            action.__sigaction_handler.sa_handler = { number in
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(signalPipeWriteEnd, &byte, 1)
            }
            #else
            action.__sigaction_u.__sa_handler = { number in
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(signalPipeWriteEnd, &byte, 1)
            }
            #endif
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(signalNumber, &action, nil)
        }
        Thread.detachNewThread {
            var byte: UInt8 = 0
            while read(readEnd, &byte, 1) == 1 { continuation.yield(Int32(byte)) }
            continuation.finish()
        }
    }

    func wait() async {
        for await _ in stream { break }
    }
}
