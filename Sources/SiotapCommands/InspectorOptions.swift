import ArgumentParser
import LiveIntervention
import SiotapInspector
import SocketIOTransport

/// `--ui ADDR`, `--ui-allow-remote` and `--ui-buffer`: where the web inspector is served, for
/// whom, and how many records it holds for pages opened later.
struct InspectorOptions: ParsableArguments {
    @Option(
        name: .customLong("ui"), help: "Serve the web inspector, at 127.0.0.1:8081 unless an address follows.", transform: ListenAddress.init
    )
    var address: ListenAddress?

    static let defaultAddress = ListenAddress(host: "127.0.0.1", port: 8081)

    /// `--ui` alone (last, or before another option or an argument that is no address) means the
    /// default address: ArgumentParser has no options with an optional value, so it is written in.
    static func addressingBareUI(_ arguments: [String]) -> [String] {
        var result: [String] = []
        for (index, argument) in arguments.enumerated() {
            result.append(argument)
            guard argument == "--ui" else { continue }
            let next = arguments.indices.contains(index + 1) ? arguments[index + 1] : nil
            if next.map({ (try? ListenAddress($0)) == nil }) ?? true { result.append(defaultAddress.description) }
        }
        return result
    }

    @Flag(
        name: .customLong("ui-allow-remote"),
        help: "Let other machines open the inspector (it serves this machine only otherwise). Its feed carries the traffic's tokens and cookies: an SSH tunnel (ssh -L 8081:127.0.0.1:8081 HOST) is safer."
    )
    var allowRemote = false

    @Option(name: .customLong("ui-buffer"), help: "Records the inspector holds for pages opened later; older ones are only in the file.")
    var buffer = 100_000

    func validate() throws {
        guard buffer > 0 else { throw ValidationError("--ui-buffer must be a positive number of records") }
        if let address, !allowRemote, !Self.isLoopback(address.host) {
            throw ValidationError("--ui \(address) is not a loopback address: add --ui-allow-remote to serve other machines")
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host.hasPrefix("127.") || host == "::1"
    }

    /// Starts the inspector on `feed`; the failure names the address.
    static func start(
        at address: ListenAddress, allowRemote: Bool, feed: InspectorFeed, report: [UInt8]? = nil, control: (any LiveControl)? = nil
    ) async throws -> InspectorServer {
        if allowRemote {
            CommandIO.current.writeError(
                "siotap: warning: the inspector serves other machines (--ui-allow-remote); its feed carries the traffic's tokens and cookies, "
                    + "and anyone with its URL (token included) can read them; an SSH tunnel (ssh -L PORT:127.0.0.1:PORT this-host) keeps it on this machine\n"
            )
        }
        do {
            return try await InspectorServer.start(
                .init(host: address.host, port: address.port, allowRemote: allowRemote), feed: feed, report: report, control: control
            )
        } catch let failure as InspectorServer.Failure {
            throw CommandFailure(failure.description)
        } catch {
            throw CommandFailure("the inspector cannot listen on \(address): \(SocketErrorText.describe(error))")
        }
    }
}
