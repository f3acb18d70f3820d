import Dispatch
import Foundation

/// SIGINT and SIGTERM, caught from the moment it is made (make it before announcing that the
/// program is ready, so a signal sent right after the announcement is not fatal).
final class SignalWaiter {
    private let stream: AsyncStream<Int32>
    private let sources: [any DispatchSourceSignal]

    init() {
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        self.stream = stream
        sources = [SIGINT, SIGTERM].map { signalNumber in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { continuation.yield(signalNumber) }
            source.resume()
            return source
        }
    }

    func wait() async {
        for await _ in stream { break }
        for source in sources { source.cancel() }
    }
}
