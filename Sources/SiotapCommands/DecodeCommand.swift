import ArgumentParser
import JWTInspection
import Logging
import TrafficCapture
import TrafficObservation

extension EngineIOVersion: ExpressibleByArgument {}
extension EngineTransport: ExpressibleByArgument {}
extension Direction: ExpressibleByArgument {}
extension SocketIOParser: ExpressibleByArgument {}

/// `--parser`: the Socket.IO parser of the traffic, or `auto` to tell it from the first packet.
enum ParserChoice: String, ExpressibleByArgument, CaseIterable {
    case auto, json, msgpack

    var parser: SocketIOParser? { self == .auto ? nil : SocketIOParser(rawValue: rawValue) }
}

struct DecodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Decode Engine.IO / Socket.IO frames into capture records.",
        discussion: """
            Each FRAME is one WebSocket message, or with --transport polling one whole HTTP body. Frames \
            come from the arguments, or one per line on standard input. Write bytes that do not fit on a \
            line as \\xHH (the v4 polling separator is \\x1e); give binary frames as base64:… or hex:…. \
            Frames are decoded in order, so a BINARY_EVENT and its attachments may be separate frames.

            Prints a readable line per record on a terminal, JSONL (capture format v1) when piped or \
            redirected; --format text|json chooses. Tokens found in CONNECT payloads are inspected too.

            A binary packet still waiting for attachments after the last frame is reported as an \
            error record ("incomplete: BINARY_EVENT waits for 1 attachment").

            --parser msgpack reads each binary frame as one msgpack packet (socket.io-msgpack-parser, \
            python-socketio's serializer="msgpack"); auto, the default, takes a first binary frame that \
            is a msgpack map for one.

            Exit codes: 0 every frame decoded; 1 the frames end with a binary packet still waiting for \
            its attachments; 2 some frame is malformed (an error record says why) or the arguments \
            are wrong.

            Examples:
              siotap decode '42["chat message","hi"]'
              siotap decode --transport polling '4hello\\x1ebAQIDBA=='
              siotap decode --eio 3 --transport polling '6:4hello10:b4AQIDBA=='
              siotap decode '451-["upload",{"_placeholder":true,"num":0}]' base64:AQID
              siotap decode hex:83a47479706502a46461746192a568656c6c6fc403010203a36e7370a12f
              siotap decode --dir s2c '0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'
              pbpaste | siotap decode --json
            """
    )

    @Option(help: "The Socket.IO parser: auto, json or msgpack (see above).")
    var parser: ParserChoice = .auto

    @Option(help: "Engine.IO version: 3 (socket.io 1.x/2.x) or 4 (socket.io 3.x and later).")
    var eio: EngineIOVersion = .v4

    @Option(help: "The transport the frames came from: websocket (one message per frame) or polling (one body per frame).")
    var transport: EngineTransport = .websocket

    @Option(help: "Direction of the frames: c2s (client to server) or s2c.")
    var dir: Direction = .clientToServer

    @OptionGroup(title: "Output")
    var output: OutputFormatOptions

    @OptionGroup(title: "Tokens")
    var tokens: JWTKeyOptions

    @Argument(help: "Frames to decode; none reads them from standard input, one per line.")
    var frames: [String] = []

    func run() async throws {
        let io = CommandIO.current
        let key = try tokens.key()
        var inputs = frames
        if inputs.isEmpty {
            guard let lines = io.readLines() else {
                throw ValidationError("Give frames as arguments or pipe them in, one per line (see --help).")
            }
            inputs = lines.filter { !$0.isEmpty }
        }
        let inspector = JWTInspector(key: key, leewaySeconds: tokens.leeway)
        let printer = RecordPrinter(io: io, format: output.resolved(io))
        var decoder = TrafficDecoder(engineVersion: eio, parser: parser.parser)
        var seq = 0
        var failed = false
        let logger = Logger(label: "siotap.decode")

        for (index, input) in inputs.enumerated() {
            let frame: TrafficDecoder.Frame
            do { frame = try FrameInput.parse(input, transport: transport) } catch {
                throw CommandFailure(.badInput, "\(error)")
            }
            let output = decoder.decode(frame, dir: dir)
            logger.debug("frame decoded", metadata: ["frame": "\(index + 1)", "bytes": "\(input.utf8.count)", "records": "\(output.records.count)"])
            var bodies = output.records
            for sighting in output.tokens {
                let report = await inspector.inspect(sighting.token)
                bodies.append(.jwt(JWTRecord(report: report, source: sighting.source, nsp: sighting.nsp)))
            }
            for body in bodies {
                seq += 1
                if case .error = body { failed = true }
                let record = CaptureRecord(seq: seq, ts: CaptureClock.now(), body)
                printer.print(record)
            }
        }
        let incomplete = decoder.incomplete
        for waiting in incomplete {
            seq += 1
            let record = CaptureRecord(
                seq: seq, ts: CaptureClock.now(),
                .error(ErrorRecord(dir: waiting.dir, code: .incomplete, message: waiting.description))
            )
            printer.print(record)
        }
        if failed { throw ExitCode(SiotapCLI.Exit.usage) }
        if !incomplete.isEmpty { throw ExitCode(SiotapCLI.Exit.checkFailed) }
    }
}

/// How a frame is written on a command line.
enum FrameInput {
    struct InvalidFrame: Error, CustomStringConvertible {
        let description: String
    }

    /// `base64:…` and `hex:…` are binary; anything else is text with `\xHH` escapes.
    static func parse(_ input: String, transport: EngineTransport) throws -> TrafficDecoder.Frame {
        let bytes: [UInt8]
        var binary = true
        if input.hasPrefix("base64:") {
            guard let decoded = Base64.decode(String(input.dropFirst(7))) else { throw InvalidFrame(description: "invalid base64 in \(input.prefix(40))") }
            bytes = decoded
        } else if input.hasPrefix("hex:") {
            guard let decoded = hex(String(input.dropFirst(4))) else { throw InvalidFrame(description: "invalid hex in \(input.prefix(40))") }
            bytes = decoded
        } else {
            bytes = unescape(input)
            binary = false
        }
        switch transport {
        case .polling:
            return .pollingBody(bytes)
        case .websocket:
            if binary { return .webSocket(.binary(bytes)) }
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw InvalidFrame(description: "a WebSocket text frame must be UTF-8; give binary frames as base64:… or hex:…")
            }
            return .webSocket(.text(text))
        }
    }

    /// Decodes `\xHH`; JSON has no `\x` escape, so payloads are never changed by this.
    static func unescape(_ text: String) -> [UInt8] {
        let utf8 = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count)
        var index = 0
        while index < utf8.count {
            if utf8[index] == UInt8(ascii: "\\"), index + 3 < utf8.count, utf8[index + 1] == UInt8(ascii: "x"),
                let value = UInt8(String(decoding: utf8[(index + 2)...(index + 3)], as: UTF8.self), radix: 16)
            {
                out.append(value)
                index += 4
            } else {
                out.append(utf8[index])
                index += 1
            }
        }
        return out
    }

    static func hex(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8.filter { $0 != UInt8(ascii: " ") })
        guard digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let value = UInt8(String(decoding: digits[index...index + 1], as: UTF8.self), radix: 16) else { return nil }
            out.append(value)
        }
        return out
    }
}
