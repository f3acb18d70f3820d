import Testing
import TrafficCapture
@testable import TrafficObservation

private func packets(_ output: TrafficDecoder.Output) -> [PacketRecord] {
    output.records.compactMap { if case .packet(let record) = $0 { record } else { nil } }
}

private func errors(_ output: TrafficDecoder.Output) -> [ErrorRecord] {
    output.records.compactMap { if case .error(let record) = $0 { record } else { nil } }
}

@Suite("Frames to capture records")
struct TrafficDecoderTests {
    @Test("A v4 WebSocket session: open, connect, event with ack, binary across frames")
    func webSocketSession() throws {
        var decoder = TrafficDecoder(engineVersion: .v4)
        let open = decoder.decode(.webSocket(.text(#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#)), dir: .serverToClient)
        guard case .engine(let engine) = open.records.first else { Issue.record("no engine record"); return }
        #expect(engine.type == .open)
        #expect(engine.data?["sid"]?.stringValue == "abc")
        #expect(engine.data?.jsonText.contains("\"maxPayload\":1000000") == true)

        let event = packets(decoder.decode(.webSocket(.text(#"42/chat,7["message",{"text":"hi","n":0.10}]"#)), dir: .clientToServer))
        #expect(event.count == 1)
        #expect(event[0].type == .event)
        #expect(event[0].nsp == "/chat")
        #expect(event[0].id == 7)
        #expect(event[0].event == "message")
        #expect(JSONValue.array(event[0].args ?? []).jsonText == #"[{"text":"hi","n":0.10}]"#)
        #expect(event[0].raw == #"2/chat,7["message",{"text":"hi","n":0.10}]"#)

        let header = decoder.decode(.webSocket(.text(#"452-["upload",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)), dir: .clientToServer)
        #expect(header.records.isEmpty)  // waits for its attachments
        #expect(decoder.decode(.webSocket(.binary([1, 2])), dir: .clientToServer).records.isEmpty)
        // The other direction is independent while this one waits.
        #expect(packets(decoder.decode(.webSocket(.text("43/chat,7[]")), dir: .serverToClient)).first?.type == .ack)
        let joined = packets(decoder.decode(.webSocket(.binary([3])), dir: .clientToServer))
        #expect(joined.count == 1)
        #expect(joined[0].type == .binaryEvent)
        #expect(joined[0].attachments == ["AQI=", "Aw=="])
        #expect(joined[0].raw == #"52-["upload",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
        #expect(JSONValue.array(joined[0].args ?? []).jsonText == #"[{"$binary":"AQI="},{"$binary":"Aw=="}]"#)

        let ping = decoder.decode(.webSocket(.text("2")), dir: .serverToClient)
        guard case .engine(let pingRecord) = ping.records.first else { Issue.record("no ping"); return }
        #expect(pingRecord.type == .ping)
        #expect(pingRecord.transport == .websocket)
    }

    @Test("Polling bodies: v4 batches with base64 binary, v3 length-prefixed with b4")
    func pollingBodies() {
        var v4 = TrafficDecoder(engineVersion: .v4)
        let body = Array("451-[\"f\",{\"_placeholder\":true,\"num\":0}]\u{1E}bAQID\u{1E}42[\"x\"]\u{1E}2".utf8)
        let output = v4.decode(.pollingBody(body), dir: .clientToServer)
        let v4Packets = packets(output)
        #expect(v4Packets.map(\.type) == [.binaryEvent, .event])
        #expect(v4Packets[0].attachments == ["AQID"])
        #expect(v4Packets.allSatisfy { $0.transport == .polling })
        #expect(output.records.count == 3)

        var v3 = TrafficDecoder(engineVersion: .v3)
        let v3Body = Array("77:0{\"sid\":\"x\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,\"pingTimeout\":5000}2:40".utf8)
        let v3Output = v3.decode(.pollingBody(v3Body), dir: .serverToClient)
        #expect(v3Output.records.count == 2)
        #expect(packets(v3Output).first?.type == .connect)
        let binary = packets(v3.decode(.pollingBody(Array("39:451-[\"f\",{\"_placeholder\":true,\"num\":0}]6:b4AQID".utf8)), dir: .clientToServer))
        #expect(binary.first?.attachments == ["AQID"])
    }

    @Test("A frame that fails to decode is an error record, and the next one decodes")
    func errorsDoNotStopDecoding() {
        var decoder = TrafficDecoder(engineVersion: .v4)
        let bad = decoder.decode(.webSocket(.text("4abc")), dir: .clientToServer)
        #expect(errors(bad).first?.code == "socketio.unknown_packet_type")
        #expect(errors(bad).first?.raw == "abc")
        let badEngine = decoder.decode(.pollingBody(Array("x".utf8)), dir: .clientToServer)
        #expect(errors(badEngine).first?.code == "engineio.unknown_packet_type")
        let invalid = decoder.decode(.webSocket(.text(#"42["connect"]"#)), dir: .clientToServer)
        #expect(errors(invalid).first?.code == "socketio.invalid_payload")
        let binary = decoder.decode(.webSocket(.binary([0xFF])), dir: .clientToServer)
        #expect(errors(binary).first?.code == "socketio.binary_while_not_reconstructing")
        #expect(errors(binary).first?.raw == "base64:/w==")
        #expect(packets(decoder.decode(.webSocket(.text(#"42["fine"]"#)), dir: .clientToServer)).first?.event == "fine")
    }

    @Test("Text while attachments are due: the half packet is reported and the new one kept")
    func missingAttachments() {
        var decoder = TrafficDecoder(engineVersion: .v4)
        _ = decoder.decode(.webSocket(.text(#"451-["f",{"_placeholder":true,"num":0}]"#)), dir: .clientToServer)
        let output = decoder.decode(.webSocket(.text(#"42["next"]"#)), dir: .clientToServer)
        #expect(errors(output).first?.code == "socketio.missing_attachments")
        #expect(errors(output).first?.raw == #"51-["f",{"_placeholder":true,"num":0}]"#)
        #expect(packets(output).first?.event == "next")
    }

    @Test("Attachments past the size limit: one error with the packet's text, the rest let by unread, the next packet decoded")
    func attachmentsTooLarge() {
        var decoder = TrafficDecoder(engineVersion: .v4, maxAttachmentBytes: 1000)
        let header = #"53-["f",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1},{"_placeholder":true,"num":2}]"#
        #expect(decoder.decode(.webSocket(.text("4" + header)), dir: .clientToServer).records.isEmpty)
        #expect(decoder.decode(.webSocket(.binary(Array(repeating: 1, count: 600))), dir: .clientToServer).records.isEmpty)
        let refused = decoder.decode(.webSocket(.binary(Array(repeating: 2, count: 600))), dir: .clientToServer)
        #expect(errors(refused).map(\.code) == ["socketio.attachments_too_large"])
        #expect(errors(refused).first?.raw == header)
        #expect(decoder.incomplete.isEmpty)
        // The third attachment is still due: let by, with no record (not a stray binary).
        #expect(decoder.decode(.webSocket(.binary(Array(repeating: 3, count: 600))), dir: .clientToServer).records.isEmpty)
        let next = decoder.decode(.webSocket(.text(#"42["next"]"#)), dir: .clientToServer)
        #expect(packets(next).map(\.event) == ["next"] && errors(next).isEmpty)
        // A packet within the limit is joined as before.
        _ = decoder.decode(.webSocket(.text(#"451-["g",{"_placeholder":true,"num":0}]"#)), dir: .clientToServer)
        let joined = decoder.decode(.webSocket(.binary(Array(repeating: 4, count: 1000))), dir: .clientToServer)
        #expect(packets(joined).map(\.event) == ["g"])
    }

    @Test("Tokens in CONNECT payloads (at any depth) and v4 namespace queries are found")
    func tokens() {
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJpZCI6NDJ9.c2lnbmF0dXJl"
        var v5 = TrafficDecoder(engineVersion: .v4)
        let output = v5.decode(.webSocket(.text(#"40/admin,{"token":""# + token + #"","nested":{"auth":"Bearer "# + token + #""},"other":"x.y.z"}"#)), dir: .clientToServer)
        #expect(output.tokens.map(\.source) == ["auth.token", "auth.nested.auth"])
        #expect(output.tokens.allSatisfy { $0.token == token && $0.nsp == "/admin" })
        // Server replies are not handshakes.
        #expect(v5.decode(.webSocket(.text(#"40{"sid":""# + token + #""}"#)), dir: .serverToClient).tokens.isEmpty)

        var v4 = TrafficDecoder(engineVersion: .v3)
        let query = v4.decode(.webSocket(.text("40/admin?token=" + token + "&x=1,")), dir: .clientToServer)
        #expect(query.tokens.map(\.source) == ["query.token"])
    }
}

@Suite("Decoding msgpack sessions and recoveries")
struct MsgPackDecodingTests {
    @Test("A session's first binary message that is a msgpack map makes it a msgpack session")
    func detects() throws {
        var decoder = TrafficDecoder(engineVersion: .v4)
        let connect = SocketIOMsgPack.encode(SocketPacket(.connect, namespace: "/", data: .object(["token": "t"])))
        let first = decoder.decode(.webSocket(.binary(connect)), dir: .clientToServer)
        #expect(first.parserFound == .msgpack && decoder.parser == .msgpack)
        guard case .packet(let record)? = first.records.first else { Issue.record("no packet: \(first.records)"); return }
        #expect(record.type == .connect && record.data?["token"]?.stringValue == "t" && record.raw == "base64:" + Base64.encode(connect))
        let event = SocketIOMsgPack.encode(.event("up", [.binary([1, 2]), .object(["n": .number(JSONNumber(UInt64.max))])], ackID: 3))
        guard case .packet(let up)? = decoder.decode(.webSocket(.binary(event)), dir: .clientToServer).records.first else {
            Issue.record("no event"); return
        }
        #expect(up.event == "up" && up.id == 3 && up.attachments == ["AQI="] && up.args?[1]["n"]?.numberValue?.literal == "18446744073709551615")
        // Text in a msgpack session is an error record; decoding goes on.
        let text = decoder.decode(.webSocket(.text(#"42["x"]"#)), dir: .clientToServer)
        guard case .error(let error)? = text.records.first else { Issue.record("no error"); return }
        #expect(error.code == "socketio.invalid_msgpack")
        // A JSON session stays one: its first message is text.
        var json = TrafficDecoder(engineVersion: .v4)
        #expect(json.decode(.webSocket(.text("40")), dir: .clientToServer).parserFound == .json)
    }

    @Test("A CONNECT that asks a session back, and the answer that gives it (or not)")
    func recovery() throws {
        var observation = ConnectionObservation(engineVersion: .v4)
        let asked = observation.observe(.webSocket(.text(#"40{"token":"t","pid":"p1","offset":"7"}"#)), dir: .clientToServer, now: 1).output
        guard case .packet(let connect)? = asked.records.first else { Issue.record("no CONNECT"); return }
        #expect(ConnectionObservation.recoveryPid(of: connect) == "p1")
        let answer = observation.observe(.webSocket(.text(#"40{"sid":"s","pid":"p1"}"#)), dir: .serverToClient, now: 1).output
        guard case .packet(let given)? = answer.records.first else { Issue.record("no answer"); return }
        #expect(given.recovered == true)
        var refused = ConnectionObservation(engineVersion: .v4)
        _ = refused.observe(.webSocket(.text(#"40{"pid":"p1","offset":"7"}"#)), dir: .clientToServer, now: 1)
        guard case .packet(let fresh)? = refused.observe(.webSocket(.text(#"40{"sid":"s2","pid":"p2"}"#)), dir: .serverToClient, now: 1).output.records.first
        else { Issue.record("no answer"); return }
        #expect(fresh.recovered == false)
    }
}
