/// `--filter`'s `key=value` terms (`event`, `nsp`, `conn`, `type`, `dir`; a bare word is an event
/// name), all of which must hold; only packets match a filter with terms. The live view, the
/// inspector and its export use this one reading.
public struct CaptureFilter: Sendable, Equatable {
    public struct Term: Sendable, Equatable {
        public var key: String
        public var value: String
    }

    /// Why a filter cannot be read.
    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public static let keys = ["event", "nsp", "conn", "type", "dir"]

    public private(set) var terms: [Term] = []

    /// Keeps everything.
    public init() {}

    public init(_ text: String) throws(Invalid) {
        for term in text.split(separator: ",") {
            let parts = term.split(separator: "=", maxSplits: 1).map { String($0).trimmingWhitespace }
            if parts.count == 1 {
                if !parts[0].isEmpty { terms.append(Term(key: "event", value: parts[0])) }
            } else {
                guard Self.keys.contains(parts[0]) else {
                    throw Invalid(description: "unknown key \(parts[0]) (\(Self.keys.joined(separator: ", ")))")
                }
                terms.append(Term(key: parts[0], value: parts[1]))
            }
        }
    }

    /// - Parameter answering: for an ack, the event it answers (``AckEvents``): `event=X` keeps
    ///   X's acks too.
    public func matches(_ record: CaptureRecord, answering: String? = nil) -> Bool {
        guard !terms.isEmpty else { return true }
        return terms.allSatisfy { $0.matches(record, answering: answering) }
    }
}

extension CaptureFilter.Term {
    /// Whether a packet record has this term's value (other records never do).
    public func matches(_ record: CaptureRecord, answering: String? = nil) -> Bool {
        guard case .packet(let packet) = record.body else { return false }
        switch key {
        case "event": return (packet.event ?? answering) == value
        case "nsp": return packet.nsp == value
        case "conn": return record.conn == value
        case "type": return packet.type.name == value.uppercased()
        case "dir": return packet.dir.rawValue == value
        default: return false
        }
    }
}

extension String {
    fileprivate var trimmingWhitespace: String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
