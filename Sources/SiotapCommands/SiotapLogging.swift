import Logging

public enum SiotapLogging {
    /// `SIOTAP_LOG_LEVEL` (trace, debug, info, notice, warning, error, critical); warning by default.
    public static func level(from text: String?) -> Logger.Level {
        text.flatMap { Logger.Level(rawValue: $0.lowercased()) } ?? .warning
    }
}

public enum ProcessInfoEnvironment {
    public static func value(_ name: String) -> String? { ProcessEnvironment.all()[name] }
}
