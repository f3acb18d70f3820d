// Decodes and encodes typical packets in a loop and prints packets and MB per second (one core).
// Run through Benchmarks/codec.sh, which builds it in release mode and runs the reference JS
// parser on the same vectors for a ratio.
import SocketIOProtocol
import TrafficCapture
import TrafficObservation

#if canImport(Glibc)
import Glibc
#endif

func now() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

struct Vector {
    let name: String
    let text: String
    let attachments: [[UInt8]]
}

let nested = "[\"update\"," + String(repeating: #"{"id":12345,"name":"a name \u00e9","tags":["x","y"],"n":0.25,"ok":true},"#, count: 24) + #"{"end":null}]"#
let vectors = [
    Vector(name: "small event", text: #"2["chat message",{"text":"hello","from":"alice"}]"#, attachments: []),
    Vector(name: "ack", text: #"3/admin,13["ok",42]"#, attachments: []),
    Vector(name: "2 KB nested event", text: "2" + nested, attachments: []),
    Vector(name: "1 MB binary event", text: #"51-["upload",{"_placeholder":true,"num":0}]"#, attachments: [[UInt8](repeating: 7, count: 1 << 20)]),
]

@inline(never) func blackHole<T>(_ value: T) { withExtendedLifetime(value) {} }

/// `CODEC_ONLY=<text>` runs only the measurements whose name contains it (for profiling one);
/// `CODEC_ITERATIONS=<n>` runs exactly n iterations of each (for `valgrind --tool=callgrind`,
/// whose instruction counts, unlike times, do not move with the machine's load).
let only = getenv("CODEC_ONLY").map { String(cString: $0) }
let fixedIterations = getenv("CODEC_ITERATIONS").flatMap { Int(String(cString: $0)) }

func measure(_ name: String, bytes: Int, minimumSeconds: Double = 1.0, _ body: () throws -> Void) rethrows {
    if let only, !name.contains(only) { return }
    if let fixedIterations {
        for _ in 0..<fixedIterations { try body() }
        print("\(name)\t\(fixedIterations) iterations")
        return
    }
    var iterations = 0
    let start = now()
    var elapsed = 0.0
    repeat {
        for _ in 0..<64 { try body() }
        iterations += 64
        elapsed = now() - start
    } while elapsed < minimumSeconds
    let perSecond = Double(iterations) / elapsed
    let megabytes = perSecond * Double(bytes) / 1_000_000
    let line = "\(name)\t\(Int(perSecond))\t\((megabytes * 10).rounded() / 10)"
    print(line)
}

print("vector\tpackets/s\tMB/s")
for vector in vectors {
    let bytes = vector.text.utf8.count + vector.attachments.reduce(0) { $0 + $1.count }
    try measure("decode \(vector.name)", bytes: bytes) {
        var decoder = SocketIODecoder(version: .v5)
        var packet = try decoder.decode(text: vector.text)
        for attachment in vector.attachments { packet = try decoder.decode(binary: attachment) }
        blackHole(packet)
    }
}
for vector in vectors {
    var decoder = SocketIODecoder(version: .v5)
    var decoded = try decoder.decode(text: vector.text)
    for attachment in vector.attachments { decoded = try decoder.decode(binary: attachment) }
    let packet = decoded!
    let bytes = vector.text.utf8.count + vector.attachments.reduce(0) { $0 + $1.count }
    measure("encode \(vector.name)", bytes: bytes) { blackHole(SocketIOCodec.encode(packet)) }
}
let payload = EngineIOCodec.encodePayload((0..<100).map { EnginePacket.message(#"2["tick",{"i":"# + String($0) + "}]") }, version: .v4).body
try measure("decode polling payload of 100 packets (v4)", bytes: payload.count) { blackHole(try EngineIOCodec.decodePayload(payload, version: .v4)) }

// The msgpack parser (socket.io-msgpack-parser, python-socketio's serializer="msgpack") on the same
// packets, each one msgpack map; Benchmarks/reference-msgpack.py runs msgpack-python (its C
// extension) with python-socketio's packet layer on the same bytes.
for vector in vectors {
    var decoder = SocketIODecoder(version: .v5)
    var decoded = try decoder.decode(text: vector.text)
    for attachment in vector.attachments { decoded = try decoder.decode(binary: attachment) }
    var packet = decoded!
    // The msgpack parser has no BINARY_ types: binary sits in the event as it is.
    if packet.type == .binaryEvent { packet.type = .event }
    packet.attachments = []
    let bytes = SocketIOMsgPack.encode(packet)
    try measure("msgpack decode \(vector.name)", bytes: bytes.count) { blackHole(try SocketIOMsgPack.decode(bytes)) }
    measure("msgpack encode \(vector.name)", bytes: bytes.count) { blackHole(SocketIOMsgPack.encode(packet)) }
}

// What the proxy does per relayed round trip besides relaying (no target of its own; it moves
// with `Benchmarks/relay-cpu.sh`'s CPU per round trip): relay_load.py's echo, 100 bytes each way,
// observed (Engine.IO and Socket.IO decoding, the records) and written as JSON lines, 512 to a
// write(2), to /dev/null; as WebSocket messages, and long-polled (a POST's body and a GET's
// answer). Not a codec figure: codec.sh leaves it out of the ratios.
let echoOut = "42[\"message\",\"" + String(repeating: "x", count: 100) + "\"]"
let echoBack = "42[\"message-back\",\"" + String(repeating: "x", count: 100) + "\"]"
if let writer = try? CaptureWriter(path: "/dev/null", append: true) {
    var time = 1_790_000_000.0
    func observeAndRecord(_ transport: String, _ echo: [(TrafficDecoder.Frame, Direction)]) throws {
        var observation = ConnectionObservation(engineVersion: .v4)
        var lines: [UInt8] = []
        var written = 0
        try measure("observe and record a \(transport) echo round trip", bytes: 0) {
            time += 0.000_05
            for (frame, dir) in echo {
                let (output, _) = observation.observe(frame, dir: dir, now: time)
                for body in output.records {
                    lines += CaptureRecord(seq: written, ts: RFC3339.format(secondsSince1970: time), conn: "c1", body).jsonBytes
                    lines.append(UInt8(ascii: "\n"))
                    written += 1
                }
            }
            if written >= 512 {
                try writer.write(lines: lines)
                lines.removeAll(keepingCapacity: true)
                written = 0
            }
        }
    }
    try observeAndRecord("websocket", [(.webSocket(.text(echoOut)), .clientToServer), (.webSocket(.text(echoBack)), .serverToClient)])
    try observeAndRecord("polling", [(.pollingBody(Array(echoOut.utf8)), .clientToServer), (.pollingBody(Array(echoBack.utf8)), .serverToClient)])
}
