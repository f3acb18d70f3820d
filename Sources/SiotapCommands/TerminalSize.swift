#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum TerminalSize {
    /// `COLUMNS` if set, else the terminal's width, else 120.
    static func columns(_ environment: [String: String]) -> Int {
        if let value = environment["COLUMNS"].flatMap(Int.init), value > 20 { return value }
        var size = winsize()
        if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 20 { return Int(size.ws_col) }
        return 120
    }
}
