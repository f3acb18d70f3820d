import SocketIOProtocol

/// A HAR entry's events as bytes and back, so that a file's events can wait on disk, not in
/// memory, to be put in time order (`HARSource`). The events a HAR file gives only: requests,
/// responses, WebSocket messages and closes, and the end a close frame brings. Pure.
public enum HAREventCoding {
    private enum Tag: UInt8 {
        case request = 1, response, text, binary, close, ended
    }

    public static func encode(_ event: HTTPConversation.Event, flow: SessionAssembler.Flow, into out: inout [UInt8]) {
        var writer = Writer(out: out)
        out = []
        switch event {
        case .request(let head, let body, let time):
            writer.byte(Tag.request.rawValue)
            writer.double(time)
            writer.flow(flow)
            writer.head(head)
            writer.bytes(body)
        case .response(let head, let body, let request, let time):
            writer.byte(Tag.response.rawValue)
            writer.double(time)
            writer.flow(flow)
            writer.head(head)
            writer.bytes(body)
            writer.byte(request == nil ? 0 : 1)
            if let request { writer.head(request) }
        case .webSocket(let message, let fromClient, let time):
            switch message {
            case .message(.text(let text)):
                writer.byte(Tag.text.rawValue)
                writer.double(time)
                writer.flow(flow)
                writer.byte(fromClient ? 1 : 0)
                writer.bytes(Array(text.utf8))
            case .message(.binary(let bytes)):
                writer.byte(Tag.binary.rawValue)
                writer.double(time)
                writer.flow(flow)
                writer.byte(fromClient ? 1 : 0)
                writer.bytes(bytes)
            case .close:
                writer.byte(Tag.close.rawValue)
                writer.double(time)
                writer.flow(flow)
                writer.byte(fromClient ? 1 : 0)
            default:
                break
            }
        case .ended(let fromClient, let reset, let time):
            writer.byte(Tag.ended.rawValue)
            writer.double(time)
            writer.flow(flow)
            writer.byte(fromClient ? 1 : 0)
            writer.byte(reset ? 1 : 0)
        default:
            break
        }
        out = writer.out
    }

    /// nil for bytes ``encode(_:flow:into:)`` did not write.
    public static func decode(_ bytes: [UInt8]) -> (HTTPConversation.Event, SessionAssembler.Flow)? {
        var reader = Reader(input: bytes)
        guard let tag = reader.byte().flatMap(Tag.init), let time = reader.double(), let flow = reader.flow() else { return nil }
        switch tag {
        case .request:
            guard let head = reader.head(), let body = reader.bytes() else { return nil }
            return (.request(head, body: body, time: time), flow)
        case .response:
            guard let head = reader.head(), let body = reader.bytes(), let hasRequest = reader.byte() else { return nil }
            let request = hasRequest == 1 ? reader.head() : nil
            if hasRequest == 1, request == nil { return nil }
            return (.response(head, body: body, request: request, time: time), flow)
        case .text, .binary:
            guard let fromClient = reader.byte(), let data = reader.bytes() else { return nil }
            let message: WebSocketMessage = tag == .text ? .text(String(decoding: data, as: UTF8.self)) : .binary(data)
            return (.webSocket(.message(message), fromClient: fromClient == 1, time: time), flow)
        case .close:
            guard let fromClient = reader.byte() else { return nil }
            return (.webSocket(.close(code: nil), fromClient: fromClient == 1, time: time), flow)
        case .ended:
            guard let fromClient = reader.byte(), let reset = reader.byte() else { return nil }
            return (.ended(fromClient: fromClient == 1, reset: reset == 1, time: time), flow)
        }
    }

    private struct Writer {
        var out: [UInt8]

        mutating func byte(_ value: UInt8) { out.append(value) }

        mutating func integer(_ value: UInt64) {
            for shift in stride(from: 0, to: 64, by: 8) { out.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
        }

        mutating func double(_ value: Double) { integer(value.bitPattern) }

        mutating func bytes(_ value: [UInt8]) {
            integer(UInt64(value.count))
            out.append(contentsOf: value)
        }

        mutating func string(_ value: String) { bytes(Array(value.utf8)) }

        mutating func head(_ head: HTTPConversation.Head) {
            string(head.method)
            string(head.target)
            integer(UInt64(bitPattern: Int64(head.status)))
            integer(UInt64(head.headers.count))
            for (name, value) in head.headers {
                string(name)
                string(value)
            }
        }

        mutating func flow(_ flow: SessionAssembler.Flow) {
            string(flow.server)
            string(flow.scheme)
            integer(UInt64(bitPattern: Int64(flow.entry)))
        }
    }

    private struct Reader {
        let input: [UInt8]
        var at = 0

        mutating func byte() -> UInt8? {
            guard at < input.count else { return nil }
            defer { at += 1 }
            return input[at]
        }

        mutating func integer() -> UInt64? {
            guard input.count - at >= 8 else { return nil }
            var value: UInt64 = 0
            for index in 0..<8 { value |= UInt64(input[at + index]) << UInt64(index * 8) }
            at += 8
            return value
        }

        mutating func double() -> Double? { integer().map(Double.init(bitPattern:)) }

        mutating func bytes() -> [UInt8]? {
            guard let count = integer(), count <= UInt64(input.count - at) else { return nil }
            defer { at += Int(count) }
            return Array(input[at..<at + Int(count)])
        }

        mutating func string() -> String? { bytes().map { String(decoding: $0, as: UTF8.self) } }

        mutating func head() -> HTTPConversation.Head? {
            guard let method = string(), let target = string(), let status = integer(), let count = integer(), count <= UInt64(input.count) else { return nil }
            var headers: [(name: String, value: String)] = []
            for _ in 0..<count {
                guard let name = string(), let value = string() else { return nil }
                headers.append((name, value))
            }
            return HTTPConversation.Head(method: method, target: target, status: Int(Int64(bitPattern: status)), headers: headers)
        }

        mutating func flow() -> SessionAssembler.Flow? {
            guard let server = string(), let scheme = string(), let entry = integer() else { return nil }
            return SessionAssembler.Flow(client: nil, server: server, scheme: scheme, entry: Int(Int64(bitPattern: entry)))
        }
    }
}
