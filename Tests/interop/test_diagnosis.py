"""Diagnoses (#28), each failure made for real with peers siotap did not write: python-socketio
servers, nginx set up wrong as deployments are, the official socket.io-client 2.3.0, python
clients. Each must be named live by the proxy (its `diagnosis` records, as the capture is written)
and the same by `siotap diagnose` of the capture afterwards (exit 1 for an error)."""
import asyncio
import json
import subprocess
import time

import jwt
import pytest
import socketio
import websocket

from conftest import ROOT, SECRET, SIOTAP, Nginx, Proxy, python_server
from test_chat_interop import token
from test_proxy import wait_for_records

pytestmark = pytest.mark.diagnosed


def diagnosed(records):
    return [(r["conn"], r["code"]) for r in records if r["kind"] == "diagnosis"]


def offline(capture):
    """`siotap diagnose --json` of the capture: its (conn, code) pairs and exit code."""
    result = subprocess.run([SIOTAP, "diagnose", str(capture), "--json"], capture_output=True, text=True, timeout=30)
    assert result.returncode in (0, 1), result.stderr
    found = [json.loads(line) for line in result.stdout.splitlines()]
    return [(d["conn"], d["code"]) for d in found], result.returncode


def live_and_offline(proxy, expected, timeout=10):
    """Waits for every (code) in `expected` live, stops the proxy, and checks `siotap diagnose`
    finds the same pairs in the capture. Returns the live pairs."""
    records = wait_for_records(proxy, lambda rs: set(expected) <= {code for _, code in diagnosed(rs)}, timeout)
    proxy.stop()
    records = proxy.records()
    live = diagnosed(records)
    assert set(expected) <= {code for _, code in live}, f"live: {live}; records: {[r for r in records if r['kind'] in ('error', 'close')]}"
    found, exit_code = offline(proxy.capture)
    assert sorted(found) == sorted(live), f"offline {found} != live {live}"
    errors = [r for r in records if r["kind"] == "diagnosis" and r["severity"] == "error"]
    assert exit_code == (1 if errors else 0)
    for record in records:
        if record["kind"] == "diagnosis":
            seqs = {r["seq"] for r in records}
            assert record["evidence"] and set(record["evidence"]) <= seqs
            assert record["docs"].startswith("https://socket.io/docs/")
    return live


async def connect_quietly(url, transports, auth=None, namespaces=None):
    """A python-socketio client that may be refused; returns it (connected or not) and its errors."""
    client = socketio.AsyncClient(reconnection=False)
    errors = []

    @client.event
    async def connect_error(data):
        errors.append(data)

    try:
        await client.connect(url, transports=transports, auth=auth, namespaces=namespaces, wait_timeout=5)
    except socketio.exceptions.ConnectionError as error:
        errors.append(str(error))
    except RuntimeError as error:
        # aiohttp's client, reading a refusal python-socketio 4's server (aiohttp 3.9) answers,
        # sometimes finds the connection closed before the body: 2 of 100 times without siotap in
        # between too. The server did answer (the capture has it): it is a refusal all the same.
        if str(error) != "Connection closed.":
            raise
        errors.append(str(error))
    return client, errors


async def leave(client):
    # Past the server's ping interval (2 s): a long-polling client's disconnect waits for its
    # pending poll (see Peer.close in test_chat_interop.py); aborted, its session dies by ping
    # timeout, and the capture rightly says so (a run under load failed so).
    try:
        await asyncio.wait_for(client.disconnect(), 10)
    except asyncio.TimeoutError:
        await client.eio.disconnect(abort=True)


@pytest.fixture(scope="module")
def python_chat():
    server = python_server("chat")
    yield server
    server.stop()


def test_sticky_sessions_missing_behind_round_robin(tmp_path):
    """Two python-socketio servers behind nginx round-robin without ip_hash: the handshake reaches
    one, the next request the other, which answers 400 "Invalid session"."""
    first, second = python_server("chat"), python_server("chat")
    nginx = Nginx(first.port, more_ports=[second.port])
    proxy = Proxy(nginx.url, tmp_path)
    try:
        async def story():
            client, errors = await connect_quietly(proxy.url, ["polling"], auth={"token": token(1)})
            await client.eio.disconnect(abort=True)
            return errors
        errors = asyncio.run(story())
        assert errors, "the client got through: nginx did not alternate"
        live = live_and_offline(proxy, ["sticky.session_unknown"])
        sticky = [r for r in proxy.records() if r["kind"] == "diagnosis" and r["code"] == "sticky.session_unknown"]
        assert "Invalid session" in sticky[0]["message"] and "load balancer" in sticky[0]["message"]
        assert live.count(live[0]) == 1, "once per conn"
    finally:
        proxy.stop()
        nginx.stop()
        first.stop()
        second.stop()


def test_upgrade_headers_dropped_by_nginx(tmp_path, python_chat):
    """nginx without `proxy_set_header Upgrade/Connection`: python-socketio's client tries the
    upgrade, the server answers 400 as to a request without them, and the session stays on
    polling to its end."""
    nginx = Nginx(python_chat.port, upgrade_headers=False)
    proxy = Proxy(nginx.url, tmp_path)
    try:
        async def story():
            client, errors = await connect_quietly(proxy.url, ["polling", "websocket"], auth={"token": token(1)})
            assert not errors and client.transport() == "polling", "the upgrade went through"
            assert await client.call("message", {"message": "hi", "sender": "u"}, timeout=5) is None
            await leave(client)
        asyncio.run(story())
        live = live_and_offline(proxy, ["upgrade.headers_lost", "transport.never_upgraded"])
        assert sorted(code for _, code in live) == ["transport.never_upgraded", "upgrade.headers_lost"]
    finally:
        proxy.stop()
        nginx.stop()


def test_a_refused_upgrade_reaches_the_client_as_it_came(tmp_path):
    """A server without WebSocket (python-socketio, transports=['polling']): its answer to a
    WebSocket-only client goes through the proxy unchanged (status and body), and the capture has
    the attempt as a conn of its own, refused."""
    server = python_server("chat", env={"TRANSPORTS": "polling"})
    proxy = Proxy(server.url, tmp_path)
    try:
        answers = []
        for url in (server.url, proxy.url):
            with pytest.raises(websocket.WebSocketBadStatusException) as refused:
                websocket.create_connection(url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket", timeout=3)
            answers.append((refused.value.status_code, refused.value.resp_body))
        assert answers[0] == answers[1] == (400, b'"Invalid transport"')
        live = live_and_offline(proxy, ["upgrade.refused"])
        records = proxy.records()
        assert [r["code"] for r in records if r["kind"] == "error"] == ["proxy.upgrade_refused"]
        assert [r["kind"] for r in records if r["conn"] == live[0][0]][:1] == ["session"]
        assert [r["by"] for r in records if r["kind"] == "close"] == ["server"]
    finally:
        proxy.stop()
        server.stop()


def test_socket_io_client_2_against_a_server_without_eio3(tmp_path, python_chat):
    """The official socket.io-client 2.3.0 (Engine.IO 3) against python-socketio 5, which speaks
    Engine.IO 4 only: its handshake is refused."""
    proxy = Proxy(python_chat.url, tmp_path)
    try:
        config = {"chat": proxy.url, "conformance": proxy.url, "transports": ["polling"], "token": token(2), "forged": "x"}
        subprocess.run(["node", str(ROOT / "Tests" / "interop" / "browser" / "client2.js"), str(ROOT / ".peers" / "js" / "socket.io-2.3.0.js"),
                        json.dumps(config)], capture_output=True, text=True, timeout=40)
        live_and_offline(proxy, ["version.mismatch"])
        mismatch = [r for r in proxy.records() if r["kind"] == "diagnosis"][0]
        assert "Engine.IO 3" in mismatch["message"] and "allowEIO3" in mismatch["message"]
    finally:
        proxy.stop()


def test_nginx_idle_timeout_shorter_than_the_heartbeat(tmp_path, python_chat):
    """nginx with proxy_read_timeout 1s in front of a server that pings every 2 s: it closes the
    quiet WebSocket after a second."""
    nginx = Nginx(python_chat.port, read_timeout="1s")
    proxy = Proxy(nginx.url, tmp_path)
    try:
        async def story():
            client, errors = await connect_quietly(proxy.url, ["websocket"], auth={"token": token(1)})
            assert not errors
            await asyncio.sleep(2.5)
            await client.eio.disconnect(abort=True)
        asyncio.run(story())
        live_and_offline(proxy, ["heartbeat.intermediary_timeout"])
        found = [r for r in proxy.records() if r["kind"] == "diagnosis"][0]
        assert "proxy_read_timeout" in found["message"] and "2.0 s" in found["message"]
    finally:
        proxy.stop()
        nginx.stop()


def test_a_client_that_stops_answering_pings(tmp_path, python_chat):
    """A WebSocket client that connects and then never answers the server's pings: python-socketio
    ends the session after pingInterval + pingTimeout (2 + 2 s here)."""
    proxy = Proxy(python_chat.url, tmp_path)
    try:
        ws = websocket.create_connection(f"ws://{proxy.host}:{proxy.port}/socket.io/?EIO=4&transport=websocket", timeout=10)
        ws.recv()
        ws.send("40" + json.dumps({"token": token(1)}))
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            try:
                ws.recv()  # pings and the CONNECT answer, never answered
            except Exception:
                break
        ws.close()
        live_and_offline(proxy, ["heartbeat.ping_timeout"])
    finally:
        proxy.stop()


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_a_message_over_max_http_buffer_size(tmp_path, python_chat, transport):
    """python-socketio with max_http_buffer_size 3,000,000: a message of 3.1 MB is refused (a
    WebSocket closed, a polling POST answered 400) and the session ends."""
    proxy = Proxy(python_chat.url, tmp_path)
    try:
        async def story():
            client, errors = await connect_quietly(proxy.url, [transport], auth={"token": token(1)})
            assert not errors
            try:
                await client.emit("message", {"message": "x" * 3_100_000, "sender": "u"})
                await asyncio.sleep(2)
            finally:
                await client.eio.disconnect(abort=True)
        asyncio.run(story())
        live_and_offline(proxy, ["payload.too_large"], timeout=15)
    finally:
        proxy.stop()


def test_tokens_and_namespaces_refused(tmp_path, python_chat):
    """The chat refuses expired, future, forged and missing tokens, and python-socketio an unknown
    namespace: each conn is named for its own reason (the proxy is given the secret)."""
    proxy = Proxy(python_chat.url, tmp_path, "--jwt-secret", SECRET)
    now = int(time.time())
    cases = [
        ("auth.token_expired", {"token": jwt.encode({"id": 1, "iat": now - 7200, "exp": now - 3600}, SECRET, algorithm="HS256")}, None),
        ("auth.token_not_yet_valid", {"token": jwt.encode({"id": 2, "iat": now + 3600, "exp": now + 7200}, SECRET, algorithm="HS256")}, None),
        ("auth.token_bad_signature", {"token": token(3, secret="another-secret-another-secret-another")}, None),
        ("auth.token_missing", {}, None),
        ("namespace.unknown", {"token": token(4)}, ["/", "/nope"]),
    ]
    try:
        async def story():
            for _, auth, namespaces in cases:
                client, _ = await connect_quietly(proxy.url, ["websocket"], auth=auth, namespaces=namespaces)
                await client.eio.disconnect(abort=True)
        asyncio.run(story())
        live = live_and_offline(proxy, [code for code, _, _ in cases])
        for index, (code, _, _) in enumerate(cases):
            assert [found for conn, found in live if conn == f"c{index + 1}" and not found.startswith("client.")] == [code]
        # Five conns of one client refused in a row: a reconnect loop as well, said once.
        assert [code for _, code in live].count("client.reconnect_storm") == 1
        unknown = [r for r in proxy.records() if r["kind"] == "diagnosis" and r["code"] == "namespace.unknown"][0]
        assert "/nope" in unknown["message"] and "connect to /" in unknown["message"]
    finally:
        proxy.stop()


def test_unanswered_acks_and_a_reconnect_loop(tmp_path, python_chat):
    """An event nobody handles asked for an ack (python-socketio answers only handled events), and
    a client retrying with an expired token six times in a row."""
    proxy = Proxy(python_chat.url, tmp_path)
    expired = jwt.encode({"id": 1, "iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}, SECRET, algorithm="HS256")
    try:
        async def story():
            client, errors = await connect_quietly(proxy.url, ["websocket"], auth={"token": token(1)})
            assert not errors
            await client.emit("nobody listens", {"n": 1}, callback=lambda *args: None)
            await asyncio.sleep(1.3)
            await leave(client)
            for _ in range(6):
                retry, _ = await connect_quietly(proxy.url, ["websocket"], auth={"token": expired})
                await retry.eio.disconnect(abort=True)
        asyncio.run(story())
        live = live_and_offline(proxy, ["ack.unanswered", "client.reconnect_storm"])
        assert [code for _, code in live].count("client.reconnect_storm") == 1
        ack = [r for r in proxy.records() if r["kind"] == "diagnosis" and r["code"] == "ack.unanswered"][0]
        assert '"nobody listens"' in ack["message"] and ack["severity"] == "warn"
    finally:
        proxy.stop()


def test_the_live_view_marks_a_diagnosis_once(tmp_path, python_chat):
    """Without --quiet, in text: the diagnosis line is there once, not once per record that shows
    it, and whatever --filter hides."""
    capture = tmp_path / "capture.jsonl"
    process = subprocess.Popen([SIOTAP, "proxy", "--listen", "127.0.0.1:0", "--upstream", python_chat.url, "--record", str(capture),
                                "--format", "text", "--filter", "event=nothing-matches-this"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={"NO_COLOR": "1", "COLUMNS": "100", "PATH": "/usr/bin:/bin"})
    try:
        url = process.stderr.readline().split(" on ", 1)[1].split(",")[0].strip()
        now = int(time.time())
        expired = jwt.encode({"id": 1, "iat": now - 7200, "exp": now - 3600}, SECRET, algorithm="HS256")

        async def story():
            client, _ = await connect_quietly(url, ["polling"], auth={"token": expired})
            await client.eio.disconnect(abort=True)
        asyncio.run(story())
        time.sleep(0.5)
    finally:
        process.send_signal(2)
        out, err = process.communicate(timeout=15)
    lines = [line for line in out.splitlines() if "⚑" in line]
    assert len(lines) == 1 and "auth.token_expired" in lines[0], out
    assert "\x1b[" not in out
    assert "auth.token_expired" in err and "1 diagnosis" in err, err


@pytest.mark.parametrize("preflight", [False, True], ids=["simple", "preflight"])
@pytest.mark.parametrize("stack", ["swift", "python"])
def test_a_page_from_an_origin_the_server_does_not_allow(tmp_path, stack, preflight):
    """A page in Chromium whose origin the server does not allow: the built-in server answers
    without Access-Control-Allow-Origin for it (as engine.io's cors middleware does), python-engineio
    with a 400 "... is not an accepted origin."; the browser refuses either way, with a preflight
    or without."""
    from conftest import Server
    from test_browser import PageServer, open_in_chromium

    server = (Server("--app", "chat", "--jwt-secret", SECRET, "--cors", "https://app.example.com") if stack == "swift"
              else python_server("chat", env={"CORS_ORIGINS": "https://app.example.com"}))
    proxy = Proxy(server.url, tmp_path)
    pages = PageServer(page=ROOT / "Tests" / "interop" / "browser" / "cors.html")
    try:
        # With a header of its own, the client's requests need a CORS preflight (OPTIONS) first,
        # and a refused preflight is all the browser sends.
        result = open_in_chromium(f"{pages.url}/cors.html?server={proxy.url}{'&header=1' if preflight else ''}", pages)
        assert result["connected"] is False, result
        live = live_and_offline(proxy, ["cors.origin_refused"])
        refused = [r for r in proxy.records() if r["kind"] == "diagnosis" and r["code"] == "cors.origin_refused"][0]
        assert pages.url in refused["message"], refused["message"]
        assert live.count(live[0]) == 1
        if preflight:
            closes = [r["reason"] for r in proxy.records() if r["kind"] == "close"]
            assert closes and all("preflight" in reason for reason in closes), closes
    finally:
        pages.stop()
        proxy.stop()
        server.stop()


def test_an_import_diagnoses_as_the_proxy_does(tmp_path, python_chat):
    """tcpdump of refused clients talking to the server directly, imported: the import writes the
    same diagnoses (tokens judged at the time they were captured) and sums them up."""
    from test_import import Tcpdump

    pcap = tmp_path / "refused.pcap"
    dump = Tcpdump(python_chat.port, pcap)
    now = int(time.time())
    expired = jwt.encode({"id": 1, "iat": now - 7200, "exp": now - 3600}, SECRET, algorithm="HS256")
    try:
        async def story():
            for auth in ({"token": expired}, {}):
                client, _ = await connect_quietly(python_chat.url, ["websocket"], auth=auth)
                await client.eio.disconnect(abort=True)
        asyncio.run(story())
    finally:
        dump.stop()
    capture = tmp_path / "imported.jsonl"
    result = subprocess.run([SIOTAP, "import", str(pcap), "--record", str(capture), "--quiet"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in capture.read_text().splitlines()]
    assert [code for _, code in diagnosed(records)] == ["auth.token_expired", "auth.token_missing"]
    assert "2 diagnoses" in result.stderr and "auth.token_expired" in result.stderr
    found, code = offline(capture)
    assert found == diagnosed(records) and code == 1


def test_a_current_client_against_an_engine_io_3_server(tmp_path):
    """The reverse mismatch: python-socketio 5 (Engine.IO 4) against python-socketio 4 (Engine.IO 3)."""
    server = python_server("chat", generation=4)
    proxy = Proxy(server.url, tmp_path)
    try:
        async def story():
            client, errors = await connect_quietly(proxy.url, ["polling"], auth={"token": token(1)})
            assert errors
            await client.eio.disconnect(abort=True)
        asyncio.run(story())
        live_and_offline(proxy, ["version.mismatch"])
        mismatch = [r for r in proxy.records() if r["kind"] == "diagnosis"][0]
        assert "only Engine.IO 3" in mismatch["message"] and '""' not in mismatch["message"]
    finally:
        proxy.stop()
        server.stop()

