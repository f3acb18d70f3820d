import ArgumentParser
import Foundation
import TrafficCapture

/// `key=value` terms, all of which must hold.
struct RecordFilter: Sendable {
    var terms: [(key: String, value: String)] = []

    /// Keeps everything.
    init() {}

    init(_ text: String) throws {
        for term in text.split(separator: ",") {
            let parts = term.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 1 {
                terms.append(("event", parts[0]))
            } else {
                guard ["event", "nsp", "conn", "type", "dir"].contains(parts[0]) else {
                    throw ValidationError("unknown key \(parts[0]) (event, nsp, conn, type, dir)")
                }
                terms.append((parts[0], parts[1]))
            }
        }
    }

    func matches(_ record: CaptureRecord) -> Bool {
        guard !terms.isEmpty else { return true }
        guard case .packet(let packet) = record.body else { return false }
        return terms.allSatisfy { term in
            switch term.key {
            case "event": packet.event == term.value
            case "nsp": packet.nsp == term.value
            case "conn": record.conn == term.value
            case "type": packet.type.name == term.value.uppercased()
            case "dir": packet.dir.rawValue == term.value
            default: false
            }
        }
    }
}
