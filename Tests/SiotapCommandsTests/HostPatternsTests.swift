import Synchronization
import Testing

@testable import SiotapCommands

@Suite("Forward mode's host patterns")
struct HostPatternsTests {
    @Test("A pattern is found in host or host:port; --ignore-hosts wins over --allow-hosts; none: everything is intercepted")
    func verdicts() throws {
        let patterns = try HostPatterns(ignore: [#"googleapis\.com$"#], allow: ["example", ":8443$"])
        #expect(!patterns.intercepts("update.googleapis.com", 443))
        #expect(patterns.intercepts("api.example.org", 443))
        #expect(patterns.intercepts("other.org", 8443))
        #expect(!patterns.intercepts("other.org", 443))
        #expect(try HostPatterns(ignore: [], allow: []).intercepts("anything", 1))
    }

    @Test("A backtracking pattern is given up on a long host within its budget, said once, and the host's verdict is kept")
    func backtrackingIsBounded() throws {
        let told = Mutex<[String]>([])
        let patterns = try HostPatterns(ignore: ["(a+)+$"], allow: []) { pattern in told.withLock { $0.append(pattern) } }
        let clock = ContinuousClock()
        for index in 0..<5 {
            // Exponential for a backtracking engine: 2^200 ways to split the a's before the dot.
            let host = String(repeating: "a", count: 200 + index) + ".b"
            let took = clock.measure { #expect(patterns.intercepts(host, 443), "given up: counted as not matching, so intercepted") }
            #expect(took < .milliseconds(500), "\(took)")
        }
        #expect(told.withLock { $0 } == ["(a+)+$"])
        let host = String(repeating: "a", count: 200) + ".b"
        let again = clock.measure { _ = patterns.intercepts(host, 443) }
        #expect(again < .milliseconds(2), "a known host is not matched again: \(again)")
        #expect(!patterns.intercepts("aaa", 443), "a quick match still matches")
    }
}
