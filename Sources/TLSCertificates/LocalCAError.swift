/// Why the local CA could not be made or read.
public struct LocalCAError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        case exists = "ca.exists"
        case missing = "ca.missing"
        case invalid = "ca.invalid"
        case unwritable = "ca.unwritable"
    }

    public let code: Code
    public let description: String

    init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }
}
