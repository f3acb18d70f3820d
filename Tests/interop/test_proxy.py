"""python-socketio clients through `siotap proxy` to the built-in server: the clients see what
they see without the proxy, and the capture holds every packet, decoded."""
import json
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import socketio

from conftest import PY4, ROOT, SECRET, SIOTAP, Proxy, Server, python_server, wait_until
from test_chat_interop import Peer, run, token

TRANSPORTS = [["websocket"], ["polling"], ["polling", "websocket"]]
IDS = ["websocket", "polling", "upgrade"]


@pytest.fixture(scope="module")
def python_chat():
    server = python_server("chat")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def python_conformance():
    server = python_server("conformance")
    yield server
    server.stop()


# Every proxy test runs in front of the built-in Swift server and of python-socketio's.
@pytest.fixture(params=["swift", "python"])
def chat_proxy(request, tmp_path):
    upstream = request.getfixturevalue("chat" if request.param == "swift" else "python_chat")
    proxy = Proxy(upstream.url, tmp_path, "--jwt-secret", SECRET)
    yield proxy
    proxy.stop()


@pytest.fixture(params=["swift", "python"])
def conformance_proxy(request, tmp_path):
    upstream = request.getfixturevalue("conformance" if request.param == "swift" else "python_conformance")
    proxy = Proxy(upstream.url, tmp_path)
    proxy.upstream = upstream
    yield proxy
    proxy.stop()


def packets(records, **match):
    return [r for r in records if r["kind"] == "packet" and all(r.get(k) == v for k, v in match.items())]


def wait_for_records(proxy, predicate, timeout=10):
    """Waits for the capture to satisfy `predicate`. Ten seconds: a polling client that drops its
    last requests when it disconnects gets its close only once its session's heartbeat window
    has passed (the conformance and chat servers here: up to 4 s, and a second)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = proxy.records()
        if predicate(records):
            return records
        time.sleep(0.05)
    return proxy.records()


@pytest.mark.parametrize("transports", TRANSPORTS, ids=IDS)
def test_chat_through_the_proxy(chat_proxy, transports):
    async def story():
        alice, bob = Peer(), Peer()
        await alice.connect(chat_proxy, transports, auth={"token": token(1, name="alice", rooms=["vip"])})
        await bob.connect(chat_proxy, transports, auth={"token": token(2, name="bob")})
        try:
            await alice.client.emit("message", {"message": "hi", "sender": "alice"})
            assert await alice.wait_for("chat response") == [["You sent: hi"]]
            assert await bob.wait_for("message") == [[{"message": "hi", "sender": "alice"}]]
            await alice.client.emit("joinRoom", "vip")
            assert await alice.wait_for("roomJoined") == [["vip"]]
            await bob.client.emit("notify", {"to": 1, "message": "ping"})
            assert await alice.wait_for("notification") == [[{"message": "ping"}]]
        finally:
            await alice.close()
            await bob.close()

    run(story())
    records = wait_for_records(chat_proxy, lambda rs: sum(r["kind"] == "close" for r in rs) >= 2)
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    sessions = [r for r in records if r["kind"] == "session"]
    assert len(sessions) == 2, "one conn per Engine.IO session, across the upgrade"
    conns = {r["conn"] for r in sessions}
    assert {r["conn"] for r in records} == conns
    assert all(r["eio"] == 4 and r["upstream"].startswith("http://127.0.0.1:") for r in sessions)
    event = packets(records, event="message", dir="c2s")[0]
    assert event["args"] == [{"message": "hi", "sender": "alice"}]
    assert event["raw"] == '2["message",{"message":"hi","sender":"alice"}]'
    assert packets(records, event="chat response", dir="s2c")[0]["args"] == ["You sent: hi"]
    assert packets(records, event="roomJoined")[0]["args"] == ["vip"]
    assert packets(records, event="notification")[0]["conn"] == event["conn"]
    jwts = [r for r in records if r["kind"] == "jwt"]
    assert sorted(r["claims"]["id"] for r in jwts) == [1, 2]
    assert all(r["source"] == "auth.token" and r["verified"] is True and r["exp"] for r in jwts)
    if transports == ["polling", "websocket"]:
        alice_conn = event["conn"]
        used = {r["transport"] for r in records if r.get("conn") == alice_conn and r["kind"] in ("packet", "engine")}
        assert used == {"polling", "websocket"}
        assert any(r["kind"] == "engine" and r["type"] == "upgrade" for r in records)
    assert len([r for r in records if r["kind"] == "close"]) == 2


@pytest.mark.diagnosed  # refuses a token on purpose
@pytest.mark.parametrize("transports", TRANSPORTS, ids=IDS)
def test_refused_tokens_are_explained(chat_proxy, transports):
    async def refused():
        for auth in ({"token": token(7, secret="a-different-secret-of-enough-length!")}, {"token": token(8, lifetime=-30)}):
            peer = Peer()
            with pytest.raises(socketio.exceptions.ConnectionError):
                await peer.connect(chat_proxy, transports, auth=auth)
            assert peer.errors == [{"message": "Authentication error: Invalid token"}]
            await peer.client.eio.disconnect(abort=True)

    run(refused())
    records = wait_for_records(chat_proxy, lambda rs: len([r for r in rs if r["kind"] == "jwt"]) >= 2)
    jwts = {r["claims"]["id"]: r for r in records if r["kind"] == "jwt"}
    assert jwts[7]["verified"] is False and jwts[7]["reason"] == "bad signature"
    assert jwts[8]["verified"] is False and jwts[8]["reason"].startswith("expired at ")
    errors = packets(records, type="CONNECT_ERROR")
    assert {json.dumps(r["data"]) for r in errors} == {'{"message": "Authentication error: Invalid token"}'}


@pytest.mark.parametrize("transports", TRANSPORTS, ids=IDS)
def test_binary_and_acks_through_the_proxy(conformance_proxy, transports):
    async def scenario():
        peer = Peer(custom=True)
        await peer.connect(conformance_proxy, transports, auth={"token": "abc"}, namespaces=["/", "/custom"])
        try:
            await peer.client.emit("message", (b"\x01\x02\x03", {"nested": [b"\x04"]}))
            assert await peer.wait_for("message-back") == [[b"\x01\x02\x03", {"nested": [b"\x04"]}]]
            assert await peer.client.call("message-with-ack", (b"\xff", 12345678901234567890), timeout=5) == (b"\xff", 12345678901234567890)
            assert await peer.client.call("message-with-ack", "c", namespace="/custom", timeout=5) == "c"
            # Ten at most: python-socketio's server refuses a POST of more than 16 packets.
            for index in range(10):
                await peer.client.emit("message", index)
            assert len(await peer.wait_for("message-back", 11)) == 11
        finally:
            await peer.close()

    run(scenario())
    records = wait_for_records(conformance_proxy, lambda rs: any(r["kind"] == "close" for r in rs))
    binary = packets(records, type="BINARY_EVENT", dir="c2s")[0]
    assert binary["args"] == [{"$binary": "AQID"}, {"nested": [{"$binary": "BA=="}]}]
    assert binary["attachments"] == ["AQID", "BA=="]
    assert binary["raw"] == '52-["message",{"_placeholder":true,"num":0},{"nested":[{"_placeholder":true,"num":1}]}]'
    ack = packets(records, type="BINARY_ACK", dir="s2c")[0]
    assert ack["args"] == [{"$binary": "/w=="}, 12345678901234567890]
    assert ack["latency_ms"] >= 0
    custom = packets(records, nsp="/custom", type="ACK")[0]
    assert custom["args"] == ["c"] and "latency_ms" in custom
    assert [r["args"][0] for r in packets(records, event="message-back")][1:] == list(range(10))
    completed = subprocess.run([str(ROOT / ".venv-peers" / "bin" / "python"), str(ROOT / "scripts" / "reference" / "validate_capture.py"),
                                str(conformance_proxy.capture)], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stdout


@pytest.fixture(scope="module")
def python4_chat():
    server = python_server("chat", generation=4)
    yield server
    server.stop()


@pytest.mark.parametrize("upstream", ["swift", "python"])
@pytest.mark.parametrize("transports", ["websocket", "polling", "polling,websocket"])
def test_engineio3_client_through_the_proxy(request, tmp_path, transports, upstream):
    target = request.getfixturevalue("chat" if upstream == "swift" else "python4_chat")
    proxy = Proxy(target.url, tmp_path, "--jwt-secret", SECRET)
    try:
        args = [PY4, str(ROOT / "Tests" / "interop" / "peers4" / "scenario.py"), "chat", proxy.url, transports, token(4)]
        result = json.loads(subprocess.run(args, capture_output=True, text=True, timeout=30).stdout.splitlines()[-1])
        assert ["chat response", ["You sent: hi"]] in result["events"]
        records = wait_for_records(proxy, lambda rs: bool(packets(rs, event="user disconnected", dir="s2c")))
        assert {r["eio"] for r in records if r["kind"] == "session"} == {3}
        assert packets(records, event="chat response")[0]["args"] == ["You sent: hi"]
        jwt = [r for r in records if r["kind"] == "jwt"][0]
        assert jwt["source"] == "query.token" and jwt["verified"] is True
    finally:
        proxy.stop()


def test_upstream_not_listening(tmp_path):
    proxy = Proxy("http://127.0.0.1:9", tmp_path)
    try:
        response = requests.get(f"{proxy.url}/socket.io/?EIO=4&transport=polling")
        assert response.status_code == 502
        import websocket
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(f"ws://{proxy.host}:{proxy.port}/socket.io/?EIO=4&transport=websocket", timeout=3)
        assert refused.value.status_code == 502
        records = wait_for_records(proxy, lambda rs: any(r["kind"] == "close" for r in rs))
        assert any(r["kind"] == "error" and r["code"] == "proxy.upstream_unreachable" for r in records)
        assert any(r["kind"] == "close" and r["by"] == "proxy" for r in records)
        # Still serving.
        assert requests.get(f"{proxy.url}/socket.io/?EIO=4&transport=polling").status_code == 502
    finally:
        proxy.stop()


def test_plain_http_and_upstream_errors_pass_through(conformance_proxy):
    for target in ["/elsewhere", "/socket.io/?EIO=4&transport=polling&sid=nope", "/socket.io/?EIO=9&transport=polling"]:
        direct = requests.get(conformance_proxy.upstream.url + target)
        relayed = requests.get(conformance_proxy.url + target)
        assert (relayed.status_code, relayed.content) == (direct.status_code, direct.content)
        assert relayed.headers.get("content-type") == direct.headers.get("content-type")
    # The unknown sid is Engine.IO traffic, answered 400: an error record. EIO=9 is not Engine.IO
    # (no such version): relayed plainly, like /elsewhere, with no record.
    records = wait_for_records(conformance_proxy, lambda rs: any(r["kind"] == "close" for r in rs))
    assert [(r["kind"], r.get("code")) for r in records] == [("error", "proxy.upstream_status"), ("close", None)]


def test_a_long_poll_whose_client_goes_away(chat_proxy):
    """A known session's polls are relayed on the event loop: a client that closes its connection
    while its long-poll waits has its upstream request dropped, and the capture's close says so. (The chat
    servers ping every 2 s or less often, so no ping answers the poll first.)"""
    proxy = chat_proxy
    opened = requests.get(f"{proxy.url}/socket.io/?EIO=4&transport=polling")
    sid = json.loads(opened.text[1:])["sid"]
    target = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
    with socket.create_connection((proxy.host, int(proxy.port))) as held:
        held.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        time.sleep(0.3)
    records = wait_for_records(proxy, lambda rs: any(r["kind"] == "close" for r in rs))
    # How clients leave (a page closed): the conn's close says it, and nothing calls it an error.
    assert [r for r in records if r["kind"] == "error"] == [], records
    closes = [r for r in records if r["kind"] == "close"]
    assert len(closes) == 1 and closes[0]["by"] == "client" and closes[0]["reason"] == "client went away mid-request"


def test_engine_io_is_found_on_any_path_and_path_restricts(tmp_path):
    """An app that mounts Engine.IO elsewhere is decoded without --path; --path restricts."""
    server = Server("--app", "conformance", "--path", "/app/realtime/")
    try:
        for args, recorded in [((), True), (("--path", "/socket.io/"), False), (("--path", "/app/realtime"), True)]:
            directory = tmp_path / str(len(args)) / (args[1].strip("/").replace("/", "-") if args else "any")
            directory.mkdir(parents=True)
            proxy = Proxy(server.url, directory, *args)
            try:
                async def story():
                    client = socketio.AsyncClient(reconnection=False)
                    await client.connect(proxy.url, socketio_path="/app/realtime/", transports=["polling", "websocket"],
                                         wait_timeout=5)
                    assert await client.call("message-with-ack", "hi", timeout=5) == "hi"
                    await client.disconnect()
                run(story())
                records = wait_for_records(proxy, lambda rs: any(r["kind"] == "close" for r in rs), timeout=3 if recorded else 0.5)
            finally:
                proxy.stop()
            if recorded:
                assert [r["path"] for r in records if r["kind"] == "session"] == ["/app/realtime/"]
                assert [r["args"] for r in packets(records, event="message-with-ack")] == [["hi"]]
            else:
                assert records == [], "traffic outside --path is relayed, not recorded"
    finally:
        server.stop()


@pytest.mark.parametrize("transports", TRANSPORTS, ids=IDS)
def test_large_payloads_through_the_proxy(large_proxy, transports):
    if large_proxy.upstream_kind == "python" and transports == ["polling"]:
        pytest.skip("python-engineio's polling server fails on bodies near 300 KB (peers.md); websocket carries them")

    async def scenario():
        peer = Peer()
        await peer.connect(large_proxy, transports)
        try:
            text = "é" * 400_000 + "x" * 100
            blob = bytes(range(256)) * 4096
            assert await peer.client.call("message-with-ack", text, timeout=20) == text
            assert await peer.client.call("message-with-ack", blob, timeout=20) == blob
        finally:
            await peer.close()

    run(scenario())
    records = wait_for_records(large_proxy, lambda rs: len(packets(rs, type="BINARY_ACK")) >= 1)
    # Nothing failed to decode (an upstream's 400 to a poll left over after the upgrade may show).
    assert not [r for r in records if r["kind"] == "error" and not r["code"].startswith("proxy.")]
    assert len(packets(records, type="BINARY_ACK")[0]["attachments"][0]) > 1_000_000


@pytest.fixture(params=["swift", "python"])
def large_proxy(request, tmp_path):
    upstream = Server("--app", "conformance", "--max-payload", "3000000") if request.param == "swift" else python_server("conformance")
    proxy = Proxy(upstream.url, tmp_path)
    proxy.upstream_kind = request.param
    yield proxy
    proxy.stop()
    upstream.stop()


def test_tokens_in_query_header_and_cookie(chat, tmp_path):
    proxy = Proxy(chat.url, tmp_path, "--jwt-secret", SECRET)
    try:
        good, bad = token(5), token(6, secret="some-other-secret-of-enough-length!!")
        headers = {"Authorization": f"Bearer {good}", "Cookie": f"session={bad}; theme=dark"}
        response = requests.get(f"{proxy.url}/socket.io/?EIO=4&transport=polling&access_token={good}", headers=headers)
        assert response.status_code == 200
        records = wait_for_records(proxy, lambda rs: len([r for r in rs if r["kind"] == "jwt"]) >= 3)
        jwts = {r["source"]: r for r in records if r["kind"] == "jwt"}
        assert set(jwts) == {"query.access_token", "header.authorization", "cookie.session"}
        assert jwts["query.access_token"]["verified"] is True
        assert jwts["header.authorization"]["claims"]["id"] == 5
        assert jwts["cookie.session"]["verified"] is False and jwts["cookie.session"]["reason"] == "bad signature"
    finally:
        proxy.stop()


def test_decode_failures_never_break_the_relay(conformance, tmp_path):
    import websocket
    proxy = Proxy(conformance.url, tmp_path)
    try:
        # The conformance app's /engine.io/ echoes anything; /socket.io/ would close on garbage.
        socket = websocket.create_connection(f"ws://{proxy.host}:{proxy.port}/socket.io/?EIO=4&transport=websocket", timeout=3)
        socket.recv()
        socket.send("40")
        assert socket.recv().startswith("40")
        assert socket.recv() == '42["auth",{}]'
        socket.send('42["message",{"broken":')  # not JSON: recorded as an error, still relayed
        closed = False
        try:
            while True:
                frame = socket.recv()
                if not frame:
                    closed = True
                    break
        except (websocket.WebSocketConnectionClosedException, ConnectionResetError):
            closed = True
        assert closed, "the server got the broken packet (and closed, as the JS server does)"
        records = wait_for_records(proxy, lambda rs: any(r["kind"] == "error" for r in rs) and any(r["kind"] == "close" for r in rs))
        error = [r for r in records if r["kind"] == "error"][0]
        assert error["code"] == "socketio.invalid_payload" and error["raw"] == '2["message",{"broken":'
        assert any(r["kind"] == "close" for r in records)
    finally:
        proxy.stop()


def test_upstream_dies_mid_session_and_client_vanishes(tmp_path):
    import websocket
    upstream = Server("--app", "conformance", "--ping-interval", "20000", "--ping-timeout", "20000")
    proxy = Proxy(upstream.url, tmp_path)
    try:
        # The client vanishes: the proxy closes the upstream side and records it.
        gone = websocket.create_connection(f"ws://{proxy.host}:{proxy.port}/socket.io/?EIO=4&transport=websocket", timeout=3)
        gone.recv()
        gone.sock.shutdown(2)
        gone.sock.close()
        # The upstream dies: the client sees the close.
        alive = websocket.create_connection(f"ws://{proxy.host}:{proxy.port}/socket.io/?EIO=4&transport=websocket", timeout=5)
        alive.recv()
        upstream.process.kill()
        upstream.process.wait()
        try:
            assert alive.recv() in ("", None)
        except (websocket.WebSocketConnectionClosedException, ConnectionResetError):
            pass
        records = wait_for_records(proxy, lambda rs: len([r for r in rs if r["kind"] == "close"]) >= 2)
        closes = [r for r in records if r["kind"] == "close"]
        assert {c["by"] for c in closes} >= {"client", "server"}
        # The proxy keeps serving: the next request gets a 502, not a hang.
        assert requests.get(f"{proxy.url}/socket.io/?EIO=4&transport=polling", timeout=5).status_code == 502
    finally:
        proxy.stop()


def test_vanished_polling_client_gets_a_close(conformance, tmp_path):
    proxy = Proxy(conformance.url, tmp_path, "--idle-timeout", "1")
    try:
        response = requests.get(f"{proxy.url}/socket.io/?EIO=4&transport=polling")
        assert response.status_code == 200
        # ...and the client is never heard from again.
        records = wait_for_records(proxy, lambda rs: any(r["kind"] == "close" for r in rs), timeout=6)
        close = [r for r in records if r["kind"] == "close"][0]
        assert close["by"] == "proxy" and close["reason"] == "no request for 1 s: the session has expired"
    finally:
        proxy.stop()


def test_vanished_polling_client_closes_with_its_session(conformance, tmp_path):
    """Without --idle-timeout: the conformance server's pingInterval + pingTimeout (0.5 s) and a
    second of grace after the last request, the session is over upstream, and in the capture."""
    proxy = Proxy(conformance.url, tmp_path)
    try:
        sid = json.loads(requests.get(f"{proxy.url}/socket.io/?EIO=4&transport=polling").text[1:])["sid"]
        assert sid
        records = wait_for_records(proxy, lambda rs: any(r["kind"] == "close" for r in rs), timeout=6)
        close = [r for r in records if r["kind"] == "close"][0]
        assert close["by"] == "proxy" and close["reason"] == "no request for 1.5 s: the session has expired"
        # The upstream agrees: the session is gone there too.
        assert requests.get(f"{conformance.url}/socket.io/?EIO=4&transport=polling&sid={sid}").status_code == 400
    finally:
        proxy.stop()


@pytest.mark.parametrize("transports", TRANSPORTS, ids=IDS)
def test_clients_see_the_same_with_and_without_the_proxy(conformance, conformance_proxy, transports):
    """The same scripted session, direct and through the proxy: every event and ack the client
    gets is identical (sids aside, which differ on every run)."""
    async def session(server):
        peer = Peer(custom=True)
        await peer.connect(server, transports, auth={"token": "t", "n": 12345678901234567890}, namespaces=["/", "/custom"])
        try:
            await peer.wait_for("auth")
            await peer.wait_for("/custom auth")
            acks = []
            await peer.client.emit("message", ("é\u2028😀", {"deep": [[[{"x": b"\x00\xff"}]]]}, -0.0, 0.1))
            await peer.wait_for("message-back")
            acks.append(await peer.client.call("message-with-ack", (b"\x01", None, True), timeout=5))
            acks.append(await peer.client.call("message-with-ack", "custom", namespace="/custom", timeout=5))
            await peer.client.emit("message", "on custom", namespace="/custom")
            await peer.wait_for("/custom message-back")
            return sorted(map(repr, peer.events)), acks
        finally:
            await peer.close()

    upstream = conformance_proxy.upstream
    direct = run(session(upstream))
    proxied = run(session(conformance_proxy))
    assert proxied == direct


def test_a_long_poll_answered_after_the_close_packet_stays_in_its_conn(chat_proxy):
    """A client's close packet (a POST) while its long-poll waits at the upstream: the poll's
    answer comes after the close packet but belongs to the session, so it is recorded in the same
    conn, before the one `close`, and no stray conn is opened for it."""
    base = f"{chat_proxy.url}/socket.io/?EIO=4&transport=polling"
    sid = json.loads(requests.get(base, timeout=5).text[1:])["sid"]
    with ThreadPoolExecutor(1) as pool:
        poll = pool.submit(requests.get, f"{base}&sid={sid}", timeout=10)
        time.sleep(0.5)  # the long-poll is now held by the upstream
        assert requests.post(f"{base}&sid={sid}", data="1", timeout=5).status_code == 200
        answer = poll.result()  # the Swift server answers a noop, python-socketio a 400
    records = wait_for_records(chat_proxy, lambda rs: any(r["kind"] == "close" for r in rs))
    time.sleep(0.3)  # anything written late would show now
    records = chat_proxy.records()
    assert {r["conn"] for r in records} == {"c1"}
    assert [r["kind"] for r in records].count("close") == 1 and records[-1]["kind"] == "close"
    assert records[-1]["by"] == "client"
    closing = next(i for i, r in enumerate(records) if r["kind"] == "engine" and r["dir"] == "c2s" and r["type"] == "close")
    answered = [r for r in records[closing:] if r.get("dir") == "s2c"]
    assert answered, f"the long-poll's answer {answer.text!r} is missing from {records}"


def test_messages_over_the_size_limit_are_relayed_not_decoded(conformance, tmp_path):
    """`--max-message-size` bounds what the proxy decodes, not what it relays: a websocket message
    above it goes through both ways, the capture says so once per direction, and the next message
    is decoded again."""
    import websocket
    proxy = Proxy(conformance.url, tmp_path, "--max-message-size", "2000")
    try:
        ws = websocket.create_connection(f"ws://{proxy.host}:{proxy.port}/socket.io/?EIO=4&transport=websocket", timeout=5)
        assert ws.recv().startswith("0{")
        ws.send("40")
        assert ws.recv().startswith("40")
        assert ws.recv().startswith('42["auth"')
        big = "x" * 5000
        ws.send(f'42["message","{big}"]')
        assert ws.recv() == f'42["message-back","{big}"]'
        ws.send('42["message","small"]')
        assert ws.recv() == '42["message-back","small"]'
        ws.close()
        records = wait_for_records(proxy, lambda rs: any(r["kind"] == "close" for r in rs))
        too_large = [r for r in records if r["kind"] == "error"]
        assert [(r["dir"], r["code"]) for r in too_large] == [("c2s", "proxy.message_too_large"), ("s2c", "proxy.message_too_large")]
        assert [(p["dir"], p["args"]) for p in packets(records, event="message")] == [("c2s", ["small"])]
        assert [(p["dir"], p["args"]) for p in packets(records, event="message-back")] == [("s2c", ["small"])]
    finally:
        proxy.stop()
    result = subprocess.run([SIOTAP, "proxy", "--max-message-size", "0"], capture_output=True, text=True)
    assert result.returncode == 2 and "--max-message-size" in result.stderr


def test_hop_by_hop_headers_are_dropped_end_to_end_ones_kept(tmp_path):
    """Headers the client's Connection header names are for the first hop only (RFC 9110 §7.6.1),
    whatever their case; the others, Host included, reach the upstream as sent."""
    import socket
    import threading
    listener = socket.create_server(("127.0.0.1", 0))
    seen = {}

    def upstream():
        data = b""
        while b"\r\n\r\n" not in data:  # the proxy first checks the port with a bare TCP connection
            conn, _ = listener.accept()
            data = b""
            while b"\r\n\r\n" not in data and (chunk := conn.recv(65536)):
                data += chunk
        seen["head"] = data.decode()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        conn.close()

    thread = threading.Thread(target=upstream, daemon=True)
    thread.start()
    proxy = Proxy(f"http://127.0.0.1:{listener.getsockname()[1]}", tmp_path)
    try:
        response = requests.get(proxy.url + "/api/status", headers={
            "Host": "app.example:8443", "Connection": "keep-alive, X-Hop-Only", "x-hop-only": "1",
            "Keep-Alive": "timeout=5", "X-End-To-End": "2"})
        assert (response.status_code, response.text) == (200, "ok")
        thread.join(5)
    finally:
        proxy.stop()
        listener.close()
    lines = seen["head"].split("\r\n")
    names = [line.split(":", 1)[0].lower() for line in lines[1:] if ":" in line]
    assert lines[0] == "GET /api/status HTTP/1.1"
    assert "host: app.example:8443" in [line.lower() for line in lines]
    assert "x-end-to-end" in names
    assert "x-hop-only" not in names and "keep-alive" not in names


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_an_answer_before_the_whole_body_is_recorded_as_a_cut_request(tmp_path, mode):
    """A server refusing a polling body over its limit answers once it has read the head, before
    the body came (engine.io does past maxHttpBufferSize): the client gets that answer, and the
    capture says how much of the body went, in reverse and in forward mode alike."""
    import threading
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def upstream():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            data = b""
            while b"\r\n\r\n" not in data and (chunk := conn.recv(65536)):
                data += chunk
            if data:  # not the proxy's bare check of the port
                conn.sendall(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                conn.settimeout(5)
                try:
                    while conn.recv(65536):
                        pass
                except OSError:
                    pass
            conn.close()

    threading.Thread(target=upstream, daemon=True).start()
    if mode == "reverse":
        proxy = Proxy(f"http://127.0.0.1:{port}", tmp_path)
    else:
        proxy = Proxy(None, tmp_path, "--mode", "forward", "--ca-dir", str(tmp_path / "ca"))
    target = "/socket.io/?EIO=4&transport=polling&sid=cutcutcutcutcutcutcu"
    uri = target if mode == "reverse" else f"http://127.0.0.1:{port}{target}"
    try:
        with socket.create_connection(("127.0.0.1", int(proxy.port)), timeout=10) as client:
            client.sendall(f"POST {uri} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: text/plain;charset=UTF-8\r\n"
                           f"Content-Length: 1000000\r\n\r\n".encode() + b"4" + b"x" * 999)
            answer = b""
            while b"\r\n\r\n" not in answer and (chunk := client.recv(65536)):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 413"), answer
        assert wait_until(lambda: any(r["kind"] == "error" and r["code"] == "proxy.request_cut" for r in proxy.records())), proxy.records()
        [cut] = [r for r in proxy.records() if r["kind"] == "error" and r["code"] == "proxy.request_cut"]
        assert "1000000 bytes" in cut["message"] and cut["dir"] == "c2s", cut
    finally:
        proxy.stop()
        listener.close()


@pytest.mark.parametrize("parser", [[], ["--parser", "json"]])
def test_every_session_record_names_its_sid(conformance, tmp_path, parser):
    """A WebSocket-only session's sid is in no URL: its `session` record takes it from the open
    packet, whether the parser is found from the first packet or given."""
    proxy = Proxy(conformance.url, tmp_path, *parser)
    try:
        for transports in (["websocket"], ["polling"]):
            client = socketio.Client(reconnection=False)
            client.connect(proxy.url, transports=transports, wait_timeout=5)
            client.disconnect()
        def settled():
            records = proxy.records()
            return len([r for r in records if r["kind"] == "close"]) == 2 and records
        records = None
        deadline = time.monotonic() + 10
        while not records and time.monotonic() < deadline:
            records = settled()
            time.sleep(0.05)
        assert records, proxy.records()
    finally:
        proxy.stop()
    sessions = [r for r in records if r["kind"] == "session"]
    opens = {r["conn"]: r["data"]["sid"] for r in records if r["kind"] == "engine" and r["type"] == "open"}
    assert [s["transport"] for s in sessions] == ["websocket", "polling"]
    assert all(s.get("sid") == opens[s["conn"]] for s in sessions), (sessions, opens)
    assert records[0]["kind"] == "session"


def test_a_stop_during_long_polls_is_their_close_not_an_error(tmp_path):
    """(#27 Must 6) Polling clients whose long-polls are waiting when the proxy stops: each conn
    ends with the proxy's close, and nothing in the capture calls the stop an error."""
    import signal
    from conftest import Server
    server = Server("--app", "conformance", "--ping-interval", "5000", "--ping-timeout", "5000")
    proxy = Proxy(server.url, tmp_path)
    clients = []
    try:
        for _ in range(3):
            client = socketio.Client(reconnection=False)
            client.connect(proxy.url, transports=["polling"], wait_timeout=5)
            clients.append(client)
        time.sleep(0.5)  # each has a long-poll waiting
        proxy.process.send_signal(signal.SIGTERM)
        assert proxy.process.wait(timeout=10) == 0
    finally:
        for client in clients:
            try:
                client.disconnect()
            except Exception:
                pass
        if proxy.process.poll() is None:
            proxy.stop()
        server.stop()
    records = proxy.records()
    closes = [r for r in records if r["kind"] == "close"]
    assert sorted(r["conn"] for r in closes) == ["c1", "c2", "c3"] and {r["reason"] for r in closes} == {"proxy stopped"}, closes
    assert [r for r in records if r["kind"] == "error"] == [], [r for r in records if r["kind"] == "error"]
