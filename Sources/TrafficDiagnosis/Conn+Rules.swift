import TrafficCapture

/// The rules: each reads what a conn saw and says, in one sentence, what it shows and what to do.
extension Conn {
    // MARK: A refused CONNECT

    mutating func refusal(_ packet: PacketRecord, seq: Int, time: Double, waited: Bool) -> [DiagnosisRecord] {
        let nsp = packet.nsp
        if !waited, !tokens.contains(where: { $0.record.nsp == nsp || $0.record.nsp == nil }), mayHaveSentToken {
            // Its token's record is on its way.
            pendingRefusal = PendingRefusal(packet, seq: seq, time: time)
            return []
        }
        let text = packet.data?.stringValue ?? packet.data?["message"]?.stringValue ?? packet.data?.jsonText ?? ""
        refused = (nsp, seq)
        let evidence = [connects[nsp], seq].compactMap { $0 }
        let said = "The server refused the CONNECT to \(nsp) (\"\(text.prefix(200))\")"
        let lowered = text.lowercased()
        if lowered.contains("invalid namespace") || lowered == "unable to connect" {
            let others = connected.isEmpty ? "no namespace of this conn was accepted" : "this conn did connect to \(connected.joined(separator: ", "))"
            return once(
                DiagnosisCatalog.namespaceUnknown,
                "\(said): the server has no namespace \(nsp) (\(others)): check the namespace in io(url + \"\(nsp)\") against the server's io.of(...), or create it there.",
                evidence: evidence
            )
        }
        let token = tokens.last { $0.record.nsp == nsp } ?? tokens.last { $0.record.nsp == nil }
        guard let (jwt, tokenSeq) = token else {
            if mayHaveSentToken {
                return once(
                    DiagnosisCatalog.connectRefused,
                    "\(said); the client sent what looks like a token, but none siotap could read as a JWT: check what the client puts in auth (or the query, a header).",
                    evidence: evidence
                )
            }
            let authLike = ["auth", "token", "jwt", "unauthori", "credential", "forbidden", "login"].contains { lowered.contains($0) }
            guard authLike else {
                return once(
                    DiagnosisCatalog.connectRefused,
                    "\(said), and the client sent no token siotap could see: the server's connection middleware refused it; its message says why.",
                    evidence: evidence
                )
            }
            return once(
                DiagnosisCatalog.tokenMissing,
                "\(said), and the client sent no token (no auth payload, nothing in the query, an Authorization header or a cookie): "
                    + "pass it in io()'s auth option (auth: { token }), and make sure it is set before the client connects.",
                evidence: evidence
            )
        }
        let proof = (evidence + [tokenSeq]).sorted()
        let which = "the token in \(jwt.source)"
        if let left = jwt.expiresInSeconds, left < 0 {
            return once(
                DiagnosisCatalog.tokenExpired,
                "\(said): \(which) had expired \(Self.duration(-left)) before it was sent (exp \(jwt.exp ?? "?")): "
                    + "get a fresh token before connecting, and on each reconnect (io()'s auth option can be a function that fetches one).",
                evidence: proof
            )
        }
        for (claim, value) in [("nbf", jwt.nbf), ("iat", jwt.iat)] {
            guard let value, let when = RFC3339.parse(value), when > time + 1 else { continue }
            return once(
                DiagnosisCatalog.tokenNotYetValid,
                "\(said): \(which) has \(claim) \(value), \(Self.duration(when - time)) after the moment it was sent: "
                    + "the clocks of the machine that issued it and of the server disagree; sync them (NTP) or let the server's check allow some clock skew.",
                evidence: proof
            )
        }
        // Checked last: a key-checked token that expired is also "not verified".
        if jwt.verified == false {
            return once(
                DiagnosisCatalog.tokenBadSignature,
                "\(said): \(which) does not verify with the key siotap was given (\(jwt.reason ?? "bad signature")): it was signed with another key "
                    + "(another environment's secret, a rotated key) or altered; sign it with the key the server checks.",
                evidence: proof
            )
        }
        let checked = jwt.verified == true ? "verifies with the key given and is not expired" : "is not expired (siotap had no key to check its signature)"
        return once(
            DiagnosisCatalog.connectRefused,
            "\(said), though \(which) \(checked): the server's middleware refused it for another reason (a claim it checks, a revoked session); its message says which.",
            evidence: proof
        )
    }

    // MARK: CORS

    /// A browser's handshake (it has an `Origin`) whose answer a browser refuses to read: no
    /// `Access-Control-Allow-Origin`, another origin, or `*` for a request that carries cookies.
    mutating func corsRefusal(_ session: SessionRecord) -> [DiagnosisRecord] {
        func field(_ headers: JSONValue?, _ name: String) -> String? {
            headers?.objectValue?.members.last { $0.key.value.lowercased() == name }?.value.stringValue
        }
        guard let answer = session.answerHeaders, let origin = field(session.headers, "origin") else { return [] }
        let allowed = field(answer, "access-control-allow-origin")
        let credentials = field(session.headers, "cookie") != nil
        if allowed == origin || (allowed == "*" && !credentials) { return [] }
        let what = switch allowed {
        case nil: "no Access-Control-Allow-Origin"
        case "*"?: "Access-Control-Allow-Origin: *, which a browser refuses for a request with cookies"
        case let other?: "Access-Control-Allow-Origin: \(other)"
        }
        return once(
            DiagnosisCatalog.corsOriginRefused,
            "The server answered a request from origin \(origin) (the handshake, or its CORS preflight) with \(what): the browser refuses it and reports a CORS error; "
                + "allow that origin on the server (cors: { origin, credentials } in Node, cors_allowed_origins in python-socketio).",
            evidence: [sessionSeq]
        )
    }

    // MARK: Answers other than the expected

    mutating func upgradeRefused(status: String?, body: String, seq: Int) -> [DiagnosisRecord] {
        let answer = "\(status ?? "an answer other than 101")" + (body.isEmpty ? "" : " (\"\(Self.unquoted(body).prefix(160))\")")
        if Self.sawNoUpgradeHeader(body) || (offeredWebSocket && body.lowercased().contains("invalid transport")) {
            return once(
                DiagnosisCatalog.upgradeHeadersLost,
                "The server answered the WebSocket upgrade\(ofSession) with \(answer), as it answers a request without an Upgrade header, "
                    + "though the request siotap relayed had one: something between siotap and the server drops the Upgrade and Connection headers "
                    + "(nginx needs proxy_http_version 1.1, proxy_set_header Upgrade $http_upgrade and Connection \"upgrade\").",
                evidence: [seq]
            )
        }
        let stays = transport == .polling && sidKnown != nil ? "; the session goes on over long-polling" : ""
        return once(
            DiagnosisCatalog.upgradeRefused,
            "The server answered the WebSocket upgrade\(ofSession) with \(answer) instead of 101 Switching Protocols\(stays): "
                + "a reverse proxy, load balancer or firewall in front of it does not pass WebSockets, or the server does not offer them (its transports option).",
            evidence: [seq]
        )
    }

    mutating func answered(status: String?, body: String, seq: Int, time: Double) -> [DiagnosisRecord] {
        let lowered = body.lowercased()
        let answer = "\(status ?? "an error")" + (body.isEmpty ? "" : " (\"\(Self.unquoted(body).prefix(160))\")")
        // engine.io's code 1; python-engineio's "Invalid session S", or "'Session is disconnected' S"
        // for one it has just ended.
        if lowered.contains("session id unknown") || lowered.contains("invalid session") || lowered.contains("session is disconnected")
            || body.contains(#""code":1,"#)
        {
            guard let sid = sidKnown, !ending else { return [] }
            // A session its server ended for want of a pong, or of any request (a page in a
            // throttled background tab stops polling), is unknown to it too: that is the heartbeat's.
            if let pingTimeout, let ping = unansweredPing, ping.from == .serverToClient, time - ping.time >= pingTimeout * 0.9 {
                return once(
                    DiagnosisCatalog.heartbeatPingTimeout,
                    "The server's ping at \(Self.clock(ping.time)) got no pong within its pingTimeout of \(Self.duration(pingTimeout)), and it then no longer knew the session "
                        + "(\(answer)): the client stopped answering (a page in a background tab, a blocked event loop, a network that went away).",
                    evidence: [ping.seq, seq]
                )
            }
            if let pingInterval, let pingTimeout, time - lastActivity >= pingInterval + pingTimeout {
                return once(
                    DiagnosisCatalog.heartbeatPingTimeout,
                    "The client sent nothing for \(Self.duration(time - lastActivity)), longer than pingInterval + pingTimeout (\(Self.duration(pingInterval + pingTimeout))), "
                        + "and the server then no longer knew the session (\(answer)): it ended it for want of a pong (a page in a background tab stops polling, a laptop slept).",
                    evidence: [lastActivitySeq, seq]
                )
            }
            let age = Self.duration(time - opened)
            let through = upstream.map { " (through \($0))" } ?? ""
            return once(
                DiagnosisCatalog.stickySessionUnknown,
                "The server answered \(answer) to a request of session \(sid), which it had opened \(age) earlier\(through): this request reached a server "
                    + "that does not know the session: several servers behind a load balancer without sticky sessions (nginx ip_hash, a cookie), or a server that restarted.",
                evidence: [sessionSeq, seq]
            )
        }
        if lowered.contains("unsupported version") || lowered.contains("unsupported protocol version") || body.contains(#""code":5,"#) {
            let advice = eio == .v3
                ? "the client speaks Engine.IO 3 (socket.io-client 2.x, python-socketio 4.x) and the server only Engine.IO 4 (Socket.IO 3 or later): "
                    + "set allowEIO3: true on a Node server, or upgrade the client"
                : "the client speaks Engine.IO 4 (socket.io-client 3 or later, python-socketio 5) and the server only Engine.IO 3 "
                    + "(Socket.IO 2.x, python-socketio 4.x): upgrade the server, or use a client of its major version"
            return once(DiagnosisCatalog.versionMismatch, "The server refused the handshake with \(answer): \(advice).", evidence: [sessionSeq, seq])
        }
        if lowered.contains("not an accepted origin") {
            let origin = body.trimmingQuotes.split(separator: " ").first.map(String.init) ?? "the page's origin"
            return once(
                DiagnosisCatalog.corsOriginRefused,
                "The server refused a request from origin \(origin) with \(answer): add that origin to the server's allowed origins "
                    + "(cors: { origin } in Node, cors_allowed_origins in python-socketio).",
                evidence: [sessionSeq, seq]
            )
        }
        if status == "413" || (status == "400" && oversized.map { time - $0.time < 2 } == true) {
            let sent = oversized.map { " after the client sent \($0.size) bytes in one message (seq \($0.seq))" } ?? ""
            let limit = maxPayload.map { ", more than the \($0) bytes of maxPayload it announced" } ?? ""
            return once(
                DiagnosisCatalog.payloadTooLarge,
                "The server answered \(answer)\(sent)\(limit), and the session ended: raise the server's maxHttpBufferSize (max_http_buffer_size in python-socketio), "
                    + "or send less at once (split it, or upload large files over plain HTTP).",
                evidence: [oversized?.seq, seq].compactMap { $0 }
            )
        }
        if status == "504", transport == .polling, let pingInterval, time - lastActivity < pingInterval - 0.25 {
            let waited = Self.duration(time - lastActivity)
            return once(
                DiagnosisCatalog.heartbeatIntermediaryTimeout,
                "A long-poll was answered \(answer) after about \(waited) without traffic, sooner than the server's pingInterval of \(Self.duration(pingInterval)): "
                    + "something between siotap and the server ends requests idle that long (nginx proxy_read_timeout, a load balancer's idle timeout); "
                    + "raise it above pingInterval + pingTimeout (\(Self.duration(pingInterval + (pingTimeout ?? 0)))).",
                evidence: [lastActivitySeq, seq]
            )
        }
        return []
    }

    /// What servers answer a request for `transport=websocket` that carries no Upgrade header:
    /// engine.io's code 3 ("Bad request"), python-engineio's "Invalid websocket upgrade" (no sid
    /// yet; with one it says "Invalid transport", which a server without WebSocket says too, so
    /// that one counts only where the session was offered WebSocket), aiohttp's own.
    static func sawNoUpgradeHeader(_ body: String) -> Bool {
        let lowered = body.lowercased()
        return body.contains(#""code":3,"#) || lowered.contains("upgrade hdr") || lowered.contains("no upgrade header")
            || lowered.contains("can \"upgrade\" only to \"websocket\"") || lowered.contains("invalid websocket upgrade")
    }

    /// A JSON string's text without its quotes (python-engineio answers `"Invalid session"`).
    static func unquoted(_ body: String) -> String {
        guard body.count >= 2, body.first == "\"", body.last == "\"" else { return body }
        return String(body.dropFirst().dropLast())
    }

    var ofSession: String { sidKnown.map { " of session \($0)" } ?? "" }

    // MARK: The end

    mutating func end(_ close: CloseRecord, seq: Int, time: Double, earlierIdleCloses: [(conn: String, seconds: Double)]) -> [DiagnosisRecord] {
        endDescription = "closed by \(close.by.rawValue): \(close.reason)"
        var found = decidePendingRefusal()
        guard close.reason != "proxy stopped" else { return found }
        let how = "(\(endDescription))"
        if !faulted, let ping = unansweredPing, let pingTimeout, time - ping.time >= pingTimeout * 0.9, !close.reason.contains("close packet") {
            let at = Self.clock(ping.time)
            found += once(
                DiagnosisCatalog.heartbeatPingTimeout,
                ping.from == .serverToClient
                    ? "The server's ping at \(at) got no pong within its pingTimeout of \(Self.duration(pingTimeout)), and the session ended \(how): "
                        + "the client stopped answering (a page in a background tab, a blocked event loop, a network that went away)."
                    : "The client's ping at \(at) got no pong within the pingTimeout of \(Self.duration(pingTimeout)), and the session ended \(how): "
                        + "the server stopped answering (busy, blocked, or gone).",
                evidence: [ping.seq, seq]
            )
        }
        if let oversized, close.by == .server, time - oversized.time < 2 {
            let limit = maxPayload.map { ", more than the \($0) bytes of maxPayload the server announced" } ?? ""
            found += once(
                DiagnosisCatalog.payloadTooLarge,
                "The client sent a message of \(oversized.size) bytes\(limit), and the server closed the connection \(how): "
                    + "raise the server's maxHttpBufferSize (max_http_buffer_size in python-socketio), or send less at once.",
                evidence: [oversized.seq, seq]
            )
        }
        if !faulted, found.isEmpty, close.by == .server, transport == .websocket, close.reason == "server closed the websocket",
            let pingInterval, unansweredPing == nil
        {
            let idle = time - lastActivity
            if idle >= 0.5, idle < pingInterval - 0.25 {
                idleClose = idle
                let same = earlierIdleCloses.filter { abs($0.seconds - idle) <= max(0.25, idle * 0.1) }.suffix(3)
                let alike = same.isEmpty ? "" : " (as " + same.map { "\($0.conn) after \(Self.duration($0.seconds))" }.joined(separator: ", ") + ")"
                found += once(
                    DiagnosisCatalog.heartbeatIntermediaryTimeout,
                    "The server's side closed the WebSocket after \(Self.duration(idle)) without traffic\(alike), before the ping the server sends every \(Self.duration(pingInterval)): "
                        + "something between siotap and the server closes idle connections after about \(Self.duration(idle)) (nginx proxy_read_timeout, a load balancer's idle timeout); "
                        + "raise it above pingInterval + pingTimeout (\(Self.duration(pingInterval + (pingTimeout ?? 0)))).",
                    evidence: [lastActivitySeq, seq]
                )
            }
        }
        if offeredWebSocket, !upgraded, let attempt = failedUpgrades.last {
            found += once(
                DiagnosisCatalog.transportNeverUpgraded,
                "The server offered WebSocket but the session stayed on long-polling to its end \(how): its upgrade was answered \(attempt.status); "
                    + "each message then costs an HTTP request: let WebSockets through whatever sits in front of the server.",
                evidence: [sessionSeq] + failedUpgrades.map(\.seq)
            )
        }
        if !faulted, refused == nil {
            found += unansweredAcks(before: time - 1, how: how)
        }
        return found
    }

    private mutating func unansweredAcks(before limit: Double, how: String) -> [DiagnosisRecord] {
        let waiting = acks.values.filter { $0.time <= limit }
        guard !waiting.isEmpty else { return [] }
        var byEvent: [String: [PendingAck]] = [:]
        for (key, ack) in acks where ack.time <= limit {
            byEvent[(key.dir == .clientToServer ? "c" : "s") + ack.event, default: []].append(ack)
        }
        let parts = byEvent.sorted { $0.key < $1.key }.map { key, acks -> String in
            let side = key.hasPrefix("c") ? "the client sent" : "the server sent"
            return "\(acks.count) \"\(key.dropFirst())\" event\(acks.count == 1 ? "" : "s") \(side)"
        }
        let handlers = byEvent.keys.contains { $0.hasPrefix("c") }
            ? "the server's handler never called its callback (on every path, errors included)"
            : "the client's handler never called its callback"
        return once(
            DiagnosisCatalog.ackUnanswered,
            "\(parts.joined(separator: ", ")) asking for an acknowledgement got none before the conn ended \(how): \(handlers), or the answer was lost with the conn.",
            evidence: Array(waiting.map(\.seq).sorted().prefix(5))
        )
    }

    /// Refused, cut by the server soon after it opened, or ended by a failure diagnosed.
    func endedBadly(at time: Double) -> Bool {
        refused != nil || (endDescription.hasPrefix("closed by server") && time - opened < Self.shortLived)
            || said.contains(DiagnosisCatalog.stickySessionUnknown.code) || said.contains(DiagnosisCatalog.versionMismatch.code)
    }

    // MARK: Words

    static func duration(_ seconds: Double) -> String {
        let magnitude = abs(seconds)
        switch magnitude {
        case ..<10: return "\((magnitude * 10).rounded() / 10) s"
        case ..<120: return "\(Int(magnitude.rounded())) s"
        case ..<7200: return "\(Int(magnitude / 60)) min \(Int(magnitude.truncatingRemainder(dividingBy: 60))) s"
        case ..<172_800: return "\(Int(magnitude / 3600)) h \(Int(magnitude.truncatingRemainder(dividingBy: 3600) / 60)) min"
        default: return "\(Int(magnitude / 86_400)) days"
        }
    }

    /// `12:00:01.250` (UTC, as the capture's times).
    static func clock(_ time: Double) -> String {
        String(RFC3339.format(secondsSince1970: time, fractionDigits: 3).dropFirst(11).dropLast())
    }
}

extension String {
    var trimmingQuotes: String {
        var text = Substring(self)
        while text.first == "\"" { text = text.dropFirst() }
        return String(text)
    }
}
