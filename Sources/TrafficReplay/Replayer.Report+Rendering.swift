public import SocketIOProtocol

/// The report's renderings for machines: JSON and JUnit XML.
extension Replayer.Report {
    /// The report as JSON (`siotap replay --json`).
    public var json: JSONValue {
        .object([
            "equal": .bool(isEqual),
            "explanations": .array(explanations.map { .string($0) }),
            "problems": .array(problems.map { .string($0) }),
            "connections": .array(connections.map { diff in
                .object([
                    "conn": .string(diff.conn),
                    "matched": .number(diff.matched),
                    "missing": .array(diff.missing.map { .object(["seq": .number($0.seq), "key": .string($0.key), "payload": $0.payload]) }),
                    "unexpected": .array(diff.unexpected.map { .object(["key": .string($0.key), "payload": $0.payload]) }),
                    "changed": .array(diff.changed.map { change in
                        .object(["seq": .number(change.seq), "key": .string(change.key), "path": .string(change.path),
                                 "expected": change.expected ?? .null, "actual": change.actual ?? .null])
                    }),
                ])
            }),
        ])
    }

    /// JUnit XML for CI: a test case per conn (the diff in its failure), one more for problems.
    public func junit(capture: String) -> String {
        let escape = Markup.escape
        let failures = connections.filter { !$0.isEqual }.count + (problems.isEmpty ? 0 : 1)
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        xml += "<testsuite name=\"siotap replay \(escape(capture))\" tests=\"\(connections.count + (problems.isEmpty ? 0 : 1))\" failures=\"\(failures)\">\n"
        for diff in connections {
            xml += "  <testcase classname=\"\(escape(capture))\" name=\"\(escape(diff.conn))\">"
            if !diff.isEqual {
                let single = Replayer.Report(connections: [diff], problems: [])
                xml += "\n    <failure message=\"\(diff.missing.count) missing, \(diff.unexpected.count) unexpected, \(diff.changed.count) changed\">"
                xml += escape(single.description) + "</failure>\n  "
            }
            xml += "</testcase>\n"
        }
        if !problems.isEmpty {
            xml += "  <testcase classname=\"\(escape(capture))\" name=\"sessions\"><failure message=\"problems\">"
            xml += escape(problems.joined(separator: "\n")) + "</failure></testcase>\n"
        }
        return xml + "</testsuite>\n"
    }
}

/// Text for XML and HTML (the JUnit report here, siotap load's HTML report).
package enum Markup {
    package static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(character)
            }
        }
        return out
    }
}
