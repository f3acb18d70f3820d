/// One TCP connection's two byte streams put back in order from captured segments: out-of-order
/// segments held until the hole before them fills, retransmissions and overlaps trimmed (the bytes
/// first seen are kept), SYN, FIN and RST followed. Bytes the capture lost are never guessed:
/// they are reported as a gap of their length, once the peer's ACK proves they were sent, or when
/// too much waits behind a hole, or at the end of the capture. A connection whose SYN was not
/// captured starts at its first segment. Pure: segments in, events out.
public struct TCPReassembler: Sendable {
    /// The connection's two ends: who sent the SYN (or, without one, the first segment seen).
    public enum Side: Sendable, Hashable {
        case initiator, responder
        public var other: Side { self == .initiator ? .responder : .initiator }
    }

    public enum Event: Sendable, Hashable {
        /// Bytes of the stream, in order, with the time of the segment that completed them.
        case data([UInt8], time: Double)
        /// Bytes the capture does not have.
        case gap(Int, time: Double)
        /// The stream ended: a FIN (in order), or a RST.
        case end(reset: Bool, time: Double)
    }

    /// More than this waiting behind a hole: the hole is taken as lost.
    public static let maxPending = 4 << 20
    /// Nor more segments than this (each has its own cost, however small).
    public static let maxPendingSegments = 1 << 18

    public let initiator: Endpoint
    public let responder: Endpoint
    // Two stored sides rather than a dictionary: hashing a side per segment showed in profiles.
    private var initiatorStream = Direction()
    private var responderStream = Direction()

    /// Changes one side's state in place (no copy of its buffers).
    private mutating func withStream<Result>(_ side: Side, _ body: (inout Direction) -> Result) -> Result {
        switch side {
        case .initiator: body(&initiatorStream)
        case .responder: body(&responderStream)
        }
    }

    private struct Direction: Sendable {
        /// The sequence number of the next byte expected, once known.
        var next: UInt32?
        /// How many bytes of the stream have been handed on (or reported lost): `next` counted
        /// from the stream's start, so waiting segments keep their place however far it moves.
        var position = 0
        /// Segments ahead of `next`, by where they start in the stream (a heap: any arrival order
        /// costs a logarithm per segment, not a sort of all that wait).
        var pending = PendingSegments()
        var pendingBytes = 0
        /// The sequence number of the FIN, once seen, and when.
        var finAt: UInt32?
        var finTime = 0.0
        var ended = false
    }

    /// Starts with the first segment seen (`first`), which also decides who is who.
    public init(first: TCPSegment) {
        if first.flags.contains(.syn) && first.flags.contains(.ack) {
            initiator = first.destination
            responder = first.source
        } else {
            initiator = first.source
            responder = first.destination
        }
    }

    public func side(of segment: TCPSegment) -> Side {
        segment.source == initiator ? .initiator : .responder
    }

    /// The events this segment completes, in order, each with the side it belongs to.
    public mutating func add(_ segment: TCPSegment) -> [(Side, Event)] {
        let side = side(of: segment)
        var events: [(Side, Event)] = []
        // The peer's ACK says how far this side's peer has received: bytes of the peer's stream
        // below it that the capture lacks were lost by the capture, not by the network.
        if segment.flags.contains(.ack) {
            fillHoles(of: side.other, upTo: segment.acknowledgment, time: segment.time, into: &events)
        }
        if segment.flags.contains(.rst) {
            flush(side, time: segment.time, into: &events)
        }
        withStream(side) { state in Self.receive(segment, into: &state, side: side, events: &events) }
        return events
    }

    private static func receive(_ segment: TCPSegment, into state: inout Direction, side: Side, events: inout [(Side, Event)]) {
        if state.ended { return }
        if segment.flags.contains(.rst) {
            state.ended = true
            events.append((side, .end(reset: true, time: segment.time)))
            return
        }
        var sequence = segment.sequence
        if segment.flags.contains(.syn) {
            sequence &+= 1
            if state.next == nil { state.next = sequence }
        }
        if state.next == nil { state.next = sequence }
        if segment.flags.contains(.fin) {
            state.finAt = sequence &+ UInt32(truncatingIfNeeded: segment.payload.count + segment.missing)
            state.finTime = segment.time
        }
        if !segment.payload.isEmpty || segment.missing > 0 {
            // Most segments come in order: handed on at once, without queueing.
            if state.pending.isEmpty, segment.missing == 0, let next = state.next, sequence == next {
                events.append((side, .data(segment.payload, time: segment.time)))
                state.next = next &+ UInt32(truncatingIfNeeded: segment.payload.count)
                state.position += segment.payload.count
            } else {
                Self.insert(&state, at: sequence, bytes: segment.payload, missing: segment.missing, time: segment.time)
            }
        }
        Self.deliver(&state, side: side, into: &events)
        if state.pendingBytes > Self.maxPending || state.pending.count > Self.maxPendingSegments {
            Self.skipHole(&state, side: side, time: segment.time, into: &events)
            Self.deliver(&state, side: side, into: &events)
        }
    }

    /// The capture is over: what waits behind holes is delivered after gaps.
    public mutating func finish(time: Double) -> [(Side, Event)] {
        var events: [(Side, Event)] = []
        for side in [Side.initiator, .responder] { flush(side, time: time, into: &events) }
        return events
    }

    // MARK: Internals

    private static func offset(_ sequence: UInt32, from next: UInt32) -> Int {
        Int(Int32(bitPattern: sequence &- next))
    }

    private static func insert(_ state: inout Direction, at sequence: UInt32, bytes: [UInt8], missing: Int, time: Double) {
        guard let next = state.next else { return }
        let start = Self.offset(sequence, from: next)
        // Already delivered in whole (a retransmission): nothing to keep. A part is trimmed when
        // its turn comes.
        if start + bytes.count + missing <= 0 { return }
        state.pending.push(PendingSegments.Segment(start: state.position + start, bytes: bytes, missing: missing, time: time))
        state.pendingBytes += bytes.count
    }

    /// Hands on, in order, what starts at `next`; trims what overlaps what was already handed on.
    private static func deliver(_ state: inout Direction, side: Side, into events: inout [(Side, Event)]) {
        while let first = state.pending.first, first.start <= state.position, let next = state.next {
            state.pending.popFirst()
            state.pendingBytes -= first.bytes.count
            var bytes = first.bytes
            var missing = first.missing
            let overlap = state.position - first.start
            if overlap >= bytes.count + missing { continue }
            if overlap > bytes.count {
                missing -= overlap - bytes.count
                bytes = []
            } else if overlap > 0 {
                bytes.removeFirst(overlap)
            }
            let advance = bytes.count + missing
            if !bytes.isEmpty { events.append((side, .data(bytes, time: first.time))) }
            if missing > 0 { events.append((side, .gap(missing, time: first.time))) }
            state.next = next &+ UInt32(truncatingIfNeeded: advance)
            state.position += advance
        }
        if let finAt = state.finAt, let next = state.next, Self.offset(finAt, from: next) <= 0, !state.ended, state.pending.isEmpty {
            state.ended = true
            events.append((side, .end(reset: false, time: state.finTime)))
        }
    }

    /// Takes the hole before the first pending segment as lost.
    private static func skipHole(_ state: inout Direction, side: Side, time: Double, into events: inout [(Side, Event)]) {
        guard let first = state.pending.first, first.start > state.position, let next = state.next else { return }
        let hole = first.start - state.position
        events.append((side, .gap(hole, time: time)))
        state.next = next &+ UInt32(truncatingIfNeeded: hole)
        state.position = first.start
    }

    private mutating func fillHoles(of side: Side, upTo acknowledged: UInt32, time: Double, into events: inout [(Side, Event)]) {
        withStream(side) { state in Self.fillHoles(&state, side: side, upTo: acknowledged, time: time, into: &events) }
    }

    private static func fillHoles(_ state: inout Direction, side: Side, upTo acknowledged: UInt32, time: Double, into events: inout [(Side, Event)]) {
        guard let start = state.next, !state.ended else { return }
        var target = acknowledged
        // An ACK of a FIN counts the FIN's own sequence number.
        if let finAt = state.finAt, finAt &+ 1 == acknowledged { target = finAt }
        // A stale or wild ACK (more than 1 GB ahead) proves nothing.
        guard Self.offset(target, from: start) > 0, Self.offset(target, from: start) < 1 << 30 else { return }
        while let next = state.next, Self.offset(target, from: next) > 0 {
            if let first = state.pending.first, first.start <= state.position {
                Self.deliver(&state, side: side, into: &events)
                continue
            }
            let hole = min(Self.offset(target, from: next), state.pending.first.map { $0.start - state.position } ?? Int.max)
            events.append((side, .gap(hole, time: time)))
            state.next = next &+ UInt32(truncatingIfNeeded: hole)
            state.position += hole
            Self.deliver(&state, side: side, into: &events)
        }
    }

    private mutating func flush(_ side: Side, time: Double, into events: inout [(Side, Event)]) {
        withStream(side) { state in
            while !state.pending.isEmpty {
                Self.skipHole(&state, side: side, time: time, into: &events)
                Self.deliver(&state, side: side, into: &events)
            }
        }
    }
}

/// Segments waiting behind a hole, the one that starts first on top (and, of two that start at
/// the same byte, the one that came first, whose bytes are kept): a binary heap.
struct PendingSegments: Sendable {
    struct Segment: Sendable {
        var start: Int
        var bytes: [UInt8]
        var missing: Int
        var time: Double
        /// Arrival order, for ties.
        var order = 0
    }

    private var heap: [Segment] = []
    private var arrivals = 0

    var isEmpty: Bool { heap.isEmpty }
    var count: Int { heap.count }
    var first: Segment? { heap.first }

    private static func precedes(_ a: Segment, _ b: Segment) -> Bool {
        a.start != b.start ? a.start < b.start : a.order < b.order
    }

    mutating func push(_ segment: Segment) {
        var segment = segment
        segment.order = arrivals
        arrivals += 1
        heap.append(segment)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.precedes(heap[child], heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func popFirst() {
        guard !heap.isEmpty else { return }
        heap.swapAt(0, heap.count - 1)
        heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var first = parent
            if left < heap.count, Self.precedes(heap[left], heap[first]) { first = left }
            if right < heap.count, Self.precedes(heap[right], heap[first]) { first = right }
            guard first != parent else { return }
            heap.swapAt(parent, first)
            parent = first
        }
    }
}
