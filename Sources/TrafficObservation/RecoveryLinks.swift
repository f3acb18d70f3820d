public import TrafficCapture
/// Connection-state recovery across a capture's conns: which conn's CONNECT answer gave each pid,
/// so that a later CONNECT asking that pid back names the conn it recovers (`recovers`, which
/// replay relies on). One value per recorder, the proxy's and `import`'s alike; it remembers at
/// least the last ``capacity`` pids (forgetting the oldest in batches, so a capture of millions of
/// sessions costs constant time per pid).
public struct RecoveryLinks: Sendable {
    public static let capacity = 4096

    private var byPid: [String: String] = [:]
    private var order: [String] = []

    public init() {}

    /// Files the pids `records` (decoded on `conn`, in `dir`) give, and names the recovered conn in
    /// the CONNECTs that ask one back.
    public mutating func link(_ records: inout [CaptureRecord.Body], dir: Direction, conn: String) {
        for index in records.indices {
            guard case .packet(var record) = records[index], record.type == .connect else { continue }
            if dir == .serverToClient, let pid = record.data?["pid"]?.stringValue {
                if byPid[pid] == nil {
                    order.append(pid)
                    if order.count > 2 * Self.capacity {
                        for forgotten in order.prefix(Self.capacity) { byPid[forgotten] = nil }
                        order.removeFirst(Self.capacity)
                    }
                }
                // The session's latest conn: a second recovery names the first recovered one.
                byPid[pid] = conn
            } else if dir == .clientToServer, let pid = ConnectionObservation.recoveryPid(of: record) {
                record.recovers = byPid[pid]
                records[index] = .packet(record)
            }
        }
    }
}
