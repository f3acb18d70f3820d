import ArgumentParser
import Foundation
import SocketIOProtocol
import Synchronization

/// `--ignore-hosts` and `--allow-hosts`: which CONNECT targets forward mode intercepts. A pattern
/// matches when it is found in `host` or in `host:port` (as mitmproxy's do).
///
/// Host names come from clients, patterns from the user, and a backtracking engine can take
/// exponential time on a pattern like `(a+)+$`: so each match has a time budget, and each
/// host's verdict is worked out once and kept (for the names used last).
final class HostPatterns: Sendable {
    /// How long the patterns may take over one host before the rest count as not matching.
    static let budget: Duration = .milliseconds(10)
    static let remembered = 4096

    private let ignore: [(text: String, regex: NSRegularExpression)]
    private let allow: [(text: String, regex: NSRegularExpression)]
    private let verdicts = Mutex(LRUCache<String, Verdict>(capacity: HostPatterns.remembered))

    private struct Verdict {
        var intercepts: Bool
        var allowedExplicitly: Bool
    }
    /// Patterns already said to be slow (once each).
    private let toldSlow = Mutex(Set<String>())
    private let slow: @Sendable (_ pattern: String) -> Void

    init(ignore: [String], allow: [String], slow: @escaping @Sendable (_ pattern: String) -> Void = { _ in }) throws {
        func compile(_ pattern: String, _ option: String) throws -> (String, NSRegularExpression) {
            do { return (pattern, try NSRegularExpression(pattern: pattern)) } catch {
                throw ValidationError("\(option): '\(pattern)' is not a regular expression")
            }
        }
        self.ignore = try ignore.map { try compile($0, "--ignore-hosts") }
        self.allow = try allow.map { try compile($0, "--allow-hosts") }
        self.slow = slow
    }

    var isEmpty: Bool { ignore.isEmpty && allow.isEmpty }

    /// Whether a CONNECT to `host:port` is intercepted.
    func intercepts(_ host: String, _ port: Int) -> Bool {
        isEmpty || verdict(host, port).intercepts
    }

    /// Whether an --allow-hosts pattern is found in `host` or `host:port` (forward mode then lets
    /// clients on other machines reach it, even on this machine's loopback).
    func allowsExplicitly(_ host: String, _ port: Int) -> Bool {
        !allow.isEmpty && verdict(host, port).allowedExplicitly
    }

    private func verdict(_ host: String, _ port: Int) -> Verdict {
        let key = Authority.text(host: host, port: port)
        if let known = verdicts.withLock({ $0.value(for: key) }) { return known }
        let deadline = ContinuousClock.now + Self.budget
        let subjects = [host, key]
        func found(_ patterns: [(text: String, regex: NSRegularExpression)]) -> Bool {
            patterns.contains { pattern in subjects.contains { subject in search(pattern, in: subject, until: deadline) } }
        }
        let allowed = !allow.isEmpty && found(allow)
        let verdict = Verdict(intercepts: !found(ignore) && (allow.isEmpty || allowed), allowedExplicitly: allowed)
        verdicts.withLock { $0.set(verdict, for: key) }
        return verdict
    }

    /// Whether `pattern` is found in `subject`, given up (as not found) at `deadline`.
    private func search(_ pattern: (text: String, regex: NSRegularExpression), in subject: String, until deadline: ContinuousClock.Instant) -> Bool {
        var found = false, late = ContinuousClock.now >= deadline
        if !late {
            // `.reportProgress` calls back while a long match runs, so it can be stopped.
            pattern.regex.enumerateMatches(in: subject, options: [.reportProgress], range: NSRange(subject.startIndex..., in: subject)) { match, _, stop in
                if match != nil {
                    found = true
                    stop.pointee = true
                } else if ContinuousClock.now >= deadline {
                    late = true
                    stop.pointee = true
                }
            }
        }
        if late, !found, toldSlow.withLock({ $0.insert(pattern.text).inserted }) { slow(pattern.text) }
        return found
    }
}
