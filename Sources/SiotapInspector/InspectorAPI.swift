import LiveIntervention
import NIOHTTP1
import SocketIOProtocol
import SocketIOTransport
import TrafficCapture

/// The HTTP API on the inspector's port (`/api/...`, under the inspector's token): what the page's
/// Emit form and Held list call, and what scripts call with curl. JSON in and out; an error is
/// `{"error": message, "code": code}` with a 4xx status. `docs/api.md` describes every route.
struct InspectorAPI: Sendable {
    let control: any LiveControl

    func handle(_ request: HTTPRequest) async -> HTTPResponse {
        // Who acted, for the records: the page says it is the page.
        let by: InterventionRecord.Actor = request.head.headers.first(name: "X-Siotap-By") == "ui" ? .ui : .api
        let parts = request.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        do {
            switch Route(method: request.method, parts: parts) {
            case .conns:
                return Self.json(.array(control.liveConns().map(Self.json)))
            case .emit(let conn):
                let outcome = try await control.emit(try Self.emitRequest(conn: conn, body: request.body), by: by)
                var members: [JSONObject.Member] = [
                    member("seq", .number(JSONNumber(outcome.seq))), member("ack", outcome.ack.map { .array($0) } ?? .null),
                ]
                if outcome.timedOut { members.append(member("timed_out", .bool(true))) }
                return Self.json(.object(JSONObject(members)))
            case .breakpoints:
                return Self.json(.array(control.breakpoints().map(Self.json)))
            case .addBreakpoint:
                let body = try Self.object(request.body)
                guard let filter = body["filter"]?.stringValue else { throw LiveControlError(.badRequest, #"a breakpoint needs {"filter": "event=chat,dir=c2s"}"#) }
                return Self.json(Self.json(try control.addBreakpoint(filter: filter, by: by)), status: .created)
            case .removeBreakpoint(let id):
                guard control.removeBreakpoint(id: id) else { throw LiveControlError(.unknownBreakpoint, "no breakpoint \(id)") }
                return Self.json(.object(JSONObject([member("deleted", .string(JSONString(id)))])))
            case .held:
                let now = CaptureClock.secondsSince1970()
                return Self.json(.array(control.heldPackets().map { Self.json($0, now: now) }))
            case .drop(let seq):
                try await control.drop(seq: seq, by: by)
                return Self.json(.object(JSONObject([member("dropped", .number(JSONNumber(seq)))])))
            case .release(let seq):
                var args: [JSONValue]?
                if !request.body.isEmpty {
                    let body = try Self.object(request.body)
                    if let given = body["args"] {
                        guard let array = given.arrayValue else { throw LiveControlError(.badRequest, "args must be an array") }
                        args = array
                    }
                }
                try await control.release(seq: seq, args: args, by: by)
                return Self.json(.object(JSONObject([
                    member("released", .number(JSONNumber(seq))), member("edited", .bool(args != nil)),
                ])))
            case .wrongMethod:
                return Self.failure(.methodNotAllowed, code: "method_not_allowed", message: "\(request.method.rawValue) \(request.path): see docs/api.md for the routes")
            case .unknown:
                return Self.failure(.notFound, code: "not_found", message: "no route \(request.path): see docs/api.md")
            }
        } catch let error as LiveControlError {
            return Self.failure(HTTPResponseStatus(statusCode: error.status), code: error.code.rawValue, message: error.message)
        } catch {
            return Self.failure(.badRequest, code: "bad_request", message: "\(error)")
        }
    }

    enum Route: Equatable {
        case conns, emit(String), breakpoints, addBreakpoint, removeBreakpoint(String), held, release(Int), drop(Int), wrongMethod, unknown

        init(method: HTTPMethod, parts: [String]) {
            guard parts.first == "api", parts.count >= 2 else {
                self = .unknown
                return
            }
            let rest = Array(parts.dropFirst())
            let matched: (HTTPMethod, Route)?
            switch (rest.count, rest[0]) {
            case (1, "conns"): matched = (.GET, .conns)
            case (3, "conns") where rest[2] == "emit": matched = (.POST, .emit(rest[1]))
            case (1, "breakpoints"): matched = method == .POST ? (.POST, .addBreakpoint) : (.GET, .breakpoints)
            case (2, "breakpoints"): matched = (.DELETE, .removeBreakpoint(rest[1]))
            case (1, "held"): matched = (.GET, .held)
            case (3, "held") where rest[2] == "release" || rest[2] == "drop":
                guard let seq = Int(rest[1]) else {
                    self = .unknown
                    return
                }
                matched = (.POST, rest[2] == "drop" ? .drop(seq) : .release(seq))
            default: matched = nil
            }
            guard let (expected, route) = matched else {
                self = .unknown
                return
            }
            self = method == expected || (method == .HEAD && expected == .GET) ? route : .wrongMethod
        }
    }

    // MARK: Requests

    static func object(_ body: [UInt8]) throws(LiveControlError) -> JSONValue {
        let value: JSONValue
        do {
            value = try JSONValue.parse(bytes: body)
        } catch {
            throw LiveControlError(.badRequest, "the body is not JSON: \(error.description)")
        }
        guard value.objectValue != nil else { throw LiveControlError(.badRequest, "the body must be a JSON object") }
        return value
    }

    static func emitRequest(conn: String, body: [UInt8]) throws(LiveControlError) -> EmitRequest {
        let object = try object(body)
        let dir: Direction
        switch object["to"]?.stringValue {
        case "server": dir = .clientToServer
        case "client": dir = .serverToClient
        default: throw LiveControlError(.badRequest, #""to" must be "server" or "client""#)
        }
        guard let event = object["event"]?.stringValue else { throw LiveControlError(.badRequest, #"an emit needs "event""#) }
        var args: [JSONValue] = []
        if let given = object["args"], given != .null {
            guard let array = given.arrayValue else { throw LiveControlError(.badRequest, "args must be an array") }
            args = array
        }
        let nsp = object["nsp"]?.stringValue ?? "/"
        guard nsp.hasPrefix("/") else { throw LiveControlError(.badRequest, "a namespace starts with /") }
        var timeout = 5.0
        if let given = object["timeout_ms"] {
            guard let milliseconds = given.numberValue?.doubleValue, milliseconds >= 0, milliseconds <= EmitRequest.longestTimeout * 1000 else {
                throw LiveControlError(.badRequest, "timeout_ms must be a number from 0 to \(Int(EmitRequest.longestTimeout * 1000))")
            }
            timeout = milliseconds / 1000
        }
        return EmitRequest(conn: conn, dir: dir, nsp: nsp, event: event, args: args, ack: object["ack"]?.boolValue ?? false, timeout: timeout)
    }

    // MARK: Answers

    static func json(_ conn: LiveConn) -> JSONValue {
        var members: [JSONObject.Member] = [
            member("conn", .string(JSONString(conn.conn))),
            member("transport", .string(JSONString(conn.transport.rawValue))),
            member("eio", .number(JSONNumber(conn.eio.rawValue))),
            member("parser", .string(JSONString(conn.parser.rawValue))),
            member("namespaces", .array(conn.namespaces.map { .string(JSONString($0)) })),
        ]
        if let sid = conn.sid { members.append(member("sid", .string(JSONString(sid)))) }
        return .object(JSONObject(members))
    }

    static func json(_ breakpoint: Breakpoint) -> JSONValue {
        .object(JSONObject([
            member("id", .string(JSONString(breakpoint.id))),
            member("filter", .string(JSONString(breakpoint.filter))),
            member("by", .string(JSONString(breakpoint.by.rawValue))),
        ]))
    }

    static func json(_ held: HeldPacket, now: Double) -> JSONValue {
        let packet = held.packet
        var members: [JSONObject.Member] = [
            member("seq", .number(JSONNumber(held.seq))),
            member("conn", .string(JSONString(held.conn))),
            member("dir", .string(JSONString(packet.dir.rawValue))),
            member("type", .string(JSONString(packet.type.name))),
            member("nsp", .string(JSONString(packet.nsp))),
        ]
        if let event = packet.event { members.append(member("event", .string(JSONString(event)))) }
        if let id = packet.id { members.append(member("id", .number(JSONNumber(id)))) }
        if let args = packet.args { members.append(member("args", .array(args))) }
        if let data = packet.data { members.append(member("data", data)) }
        members += [
            member("raw", .string(JSONString(packet.raw))),
            member("breakpoint", .string(JSONString(held.breakpoint))),
            member("held_ms", .number(JSONNumber(Int(((now - held.since) * 1000).rounded())))),
            member("waiting", .number(JSONNumber(held.waiting))),
        ]
        return .object(JSONObject(members))
    }

    static func json(_ value: JSONValue, status: HTTPResponseStatus = .ok) -> HTTPResponse {
        var response = HTTPResponse(status: status, contentType: "application/json", body: value.jsonText + "\n")
        response.headers.add(name: "Cache-Control", value: "no-store")
        return response
    }

    static func failure(_ status: HTTPResponseStatus, code: String, message: String) -> HTTPResponse {
        json(.object(JSONObject([member("error", .string(JSONString(message))), member("code", .string(JSONString(code)))])), status: status)
    }
}

private func member(_ key: String, _ value: JSONValue) -> JSONObject.Member {
    JSONObject.Member(key: JSONString(key), value: value)
}
