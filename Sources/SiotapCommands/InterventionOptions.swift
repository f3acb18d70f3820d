import ArgumentParser
import SocketIOProxy
import TrafficCapture

/// `--break` and `--break-timeout`: packets held until someone lets them go from the inspector
/// or its API (docs/api.md).
struct InterventionOptions: ParsableArguments {
    @Option(
        name: .customLong("break"),
        help: "Hold the Socket.IO packets that match these --filter terms until they are released, edited or dropped from the inspector or its API (repeatable; needs --ui)."
    )
    var breakpoints: [String] = []

    @Option(name: .customLong("break-timeout"), help: "Seconds a held packet waits before it goes on unchanged.")
    var breakTimeout = 60.0

    func validate() throws {
        guard breakTimeout > 0, breakTimeout <= 24 * 3600 else { throw ValidationError("--break-timeout must be more than 0 and at most a day (86400 s)") }
        for filter in breakpoints {
            do {
                _ = try CaptureFilter(filter)
            } catch {
                throw ValidationError("--break \(filter): \(error.description)")
            }
        }
    }

    /// With the inspector (or breakpoints), live conns can be acted on.
    func settings(inspector: Bool) -> InterventionSettings? {
        inspector || !breakpoints.isEmpty ? InterventionSettings(breakpoints: breakpoints, breakTimeout: breakTimeout) : nil
    }
}
