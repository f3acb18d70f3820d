import ArgumentParser

/// The built-in server's apps, as `--app` names them.
enum DemoApp: String, ExpressibleByArgument, CaseIterable, Sendable {
    case chat
    case conformance
}
