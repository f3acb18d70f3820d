"""Acting on live conns (#29): `siotap proxy --ui` and its HTTP API (docs/api.md), between a
python-socketio client and python-socketio's conformance server (`message` is echoed back as
`message-back`, `message-with-ack` answers with its arguments), over websocket, polling and the
upgrade, and with the msgpack parser. What the peers lived through is the proof: a handler fired
by an emit of the proxy's, an answer that reached the API and not the client, an echo of an
edited message, order kept behind a held packet, a conn kept alive through a long hold."""
import json
import logging
import tempfile
import threading
import time
import urllib.error
import urllib.request

import pytest
import socketio

from conftest import Proxy, python_server, wait_until

TRANSPORTS = {"websocket": ["websocket"], "polling": ["polling"], "upgrade": ["polling", "websocket"]}


@pytest.fixture(scope="module")
def server():
    server = python_server("conformance")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def msgpack_server():
    server = python_server("conformance", serializer="msgpack")
    yield server
    server.stop()


class Live:
    """A proxy with the inspector (and so the API) on, recording to a temporary directory."""

    def __init__(self, upstream, *args):
        self.directory = tempfile.TemporaryDirectory(prefix="siotap-live-")
        self.proxy = Proxy(upstream.url, self.directory.name, "--ui", "127.0.0.1:0", *args)
        page = self.proxy.start_line.split("inspector at ", 1)[1].split()[0].rstrip(",")
        self.base, self.token = page.split("/?token=", 1)
        self.url = self.proxy.url

    def call(self, method, path, body=None, token=True, timeout=15):
        """(status, JSON answer) of an API route, with the token as a bearer token."""
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return answer.status, json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as error:
            text = error.read()
            try:
                return error.code, json.loads(text)
            except ValueError:
                return error.code, text.decode()

    def conn(self):
        """The one live conn, once it has joined the main namespace."""
        found = []

        def joined():
            status, conns = self.call("GET", "/api/conns")
            found[:] = [c for c in conns if "/" in c["namespaces"]] if status == 200 else []
            return found

        assert wait_until(joined, timeout=5), self.call("GET", "/api/conns")
        return found[0]

    def held(self, count=1, timeout=5):
        found = []

        def enough():
            found[:] = self.call("GET", "/api/held")[1]
            return len(found) >= count

        assert wait_until(enough, timeout=timeout), found
        return found

    def settled(self):
        """The records once every conn has its close: the capture is written after the traffic
        has gone on, and a conn's close is its last record."""
        def closed():
            records = self.proxy.records()
            conns = {r["conn"] for r in records if r["kind"] == "session"}
            return conns and conns <= {r["conn"] for r in records if r["kind"] == "close"}
        assert wait_until(closed, timeout=10), self.proxy.records()
        return self.proxy.records()

    def interventions(self):
        return [r for r in self.settled() if r["kind"] == "intervention"]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proxy.stop()
        self.directory.cleanup()


class Client:
    """python-socketio's client, with what it received and what its logger warned of."""

    def __init__(self, url, transport, serializer="default"):
        self.warnings = []
        logger = logging.getLogger(f"intervention-client-{id(self)}")
        logger.setLevel(logging.INFO)
        warnings = self.warnings

        class Keep(logging.Handler):
            def emit(self, record):
                if record.levelno >= logging.WARNING:
                    warnings.append(record.getMessage())

        logger.addHandler(Keep())
        self.sio = socketio.Client(reconnection=False, logger=logger, serializer=serializer)
        self.events = []
        self.sio.on("message-back", lambda *args: self.events.append(("message-back", args)))
        self.sio.on("injected", lambda *args: self.events.append(("injected", args)))
        self.sio.on("asks", self.asks)
        self.sio.connect(url, transports=TRANSPORTS[transport], auth={"token": "t"}, wait_timeout=5)
        if transport == "upgrade":
            assert wait_until(lambda: self.sio.transport() == "websocket", timeout=5)
        self.sid = self.sio.get_sid()

    def asks(self, *args):
        self.events.append(("asks", args))
        return ["answer", *args]

    def got(self, name):
        return [args for event, args in self.events if event == name]

    def close(self):
        self.sio.disconnect()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_emit_toward_the_client_fires_its_handler(server, transport):
    with Live(server) as live:
        client = Client(live.url, transport)
        conn = live.conn()
        assert conn["transport"] == TRANSPORTS[transport][-1]
        status, answer = live.call("POST", f"/api/conns/{conn['conn']}/emit",
                                   {"to": "client", "event": "injected", "args": [{"n": 1}, "caf\u00e9"]})
        assert status == 200, answer
        assert wait_until(lambda: client.got("injected"), timeout=5)
        assert client.got("injected") == [({"n": 1}, "caf\u00e9")]
        # The client answers an ack the server never asked for; the API gets it, the server does not.
        status, answer = live.call("POST", f"/api/conns/{conn['conn']}/emit",
                                   {"to": "client", "event": "asks", "args": [7], "ack": True, "timeout_ms": 5000})
        assert status == 200 and answer["ack"] == [["answer", 7]], answer
        client.close()
        emits = [r for r in live.interventions() if r["action"] == "emit"]
        assert [(r["dir"], r["by"]) for r in emits] == [("s2c", "api"), ("s2c", "api")]
        # As the API was sent it (json.dumps escapes é): JSON fidelity.
        assert emits[0]["raw"] == '2["injected",{"n":1},"caf\\u00e9"]'
        answers = [r for r in live.interventions() if r["action"] == "answer"]
        assert [r["answers"] for r in answers] == [emits[1]["seq"]]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_emit_toward_the_server_gets_its_ack_back_to_the_api_not_the_client(server, transport):
    with Live(server) as live:
        client = Client(live.url, transport)
        conn = live.conn()
        status, answer = live.call("POST", f"/api/conns/{conn['conn']}/emit",
                                   {"to": "server", "nsp": "/", "event": "message-with-ack", "args": [1, {"k": "v"}], "ack": True})
        assert status == 200, answer
        assert answer["ack"] == [1, {"k": "v"}]
        # And one without an ack: the server echoes it to the client, as if the client had sent it.
        status, answer = live.call("POST", f"/api/conns/{conn['conn']}/emit", {"to": "server", "event": "message", "args": ["from the api"]})
        assert status == 200 and answer["ack"] is None, answer
        assert wait_until(lambda: client.got("message-back"), timeout=5)
        assert client.got("message-back") == [("from the api",)]
        client.close()
        assert not [w for w in client.warnings if "callback" in w.lower()], client.warnings
        records = live.settled()
        acks = [r for r in records if r["kind"] == "packet" and r["type"] == "ACK" and r["dir"] == "s2c"]
        assert acks and acks[0]["id"] >= 1_000_000_000
        answer_records = [r for r in records if r["kind"] == "intervention" and r["action"] == "answer"]
        assert [r["packet"] for r in answer_records] == [acks[0]["seq"]]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_held_message_edited_is_what_the_server_gets(server, transport):
    with Live(server, "--break", "event=message,dir=c2s") as live:
        client = Client(live.url, transport)
        client.sio.emit("message", {"text": "original", "n": 1})
        held = live.held()[0]
        assert (held["event"], held["dir"], held["args"], held["breakpoint"]) == ("message", "c2s", [{"text": "original", "n": 1}], "b1")
        time.sleep(0.3)
        assert not client.got("message-back"), "held: the server has not seen it"
        status, answer = live.call("POST", f"/api/held/{held['seq']}/release", {"args": [{"text": "edited", "n": 2}]})
        assert status == 200 and answer == {"released": held["seq"], "edited": True}, answer
        assert wait_until(lambda: client.got("message-back"), timeout=5)
        assert client.got("message-back") == [({"text": "edited", "n": 2},)]
        assert live.call("GET", "/api/held")[1] == []
        client.close()
        actions = [(r["action"], r["by"], r.get("packet")) for r in live.interventions()]
        assert actions == [("hold", "cli", held["seq"]), ("edit", "api", held["seq"])]
        assert live.interventions()[1]["raw"] == '2["message",{"text":"edited","n":2}]'


def test_a_dropped_message_never_arrives_and_the_conn_goes_on(server):
    with Live(server) as live:
        client = Client(live.url, "websocket")
        status, breakpoint = live.call("POST", "/api/breakpoints", {"filter": "event=message,dir=c2s"})
        assert status == 201, breakpoint
        client.sio.emit("message", "lost")
        held = live.held()[0]
        assert live.call("POST", f"/api/held/{held['seq']}/drop")[0] == 200
        assert live.call("POST", f"/api/held/{held['seq']}/drop")[0] == 404, "decided once"
        assert live.call("DELETE", f"/api/breakpoints/{breakpoint['id']}")[0] == 200
        client.sio.emit("message", "kept")
        assert wait_until(lambda: client.got("message-back"), timeout=5)
        time.sleep(0.3)
        assert client.got("message-back") == [("kept",)]
        client.close()


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_order_is_kept_behind_a_held_packet(server, transport):
    """An acked message is held; a plain one sent after it waits behind it (the held list says
    so), and the server answers them in the order they were sent."""
    with Live(server, "--break", "event=message-with-ack") as live:
        client = Client(live.url, transport)
        answered = []
        caller = threading.Thread(target=lambda: answered.append(client.sio.call("message-with-ack", "first", timeout=10)))
        caller.start()
        held = live.held()[0]
        client.sio.emit("message", "second")
        assert wait_until(lambda: live.call("GET", "/api/held")[1][0]["waiting"] == 1, timeout=5)
        time.sleep(0.3)
        assert not client.got("message-back"), "the second waits behind the first"
        client.events.append(("released", ()))
        assert live.call("POST", f"/api/held/{held['seq']}/release")[0] == 200
        caller.join(10)
        assert answered == ["first"]
        assert wait_until(lambda: client.got("message-back"), timeout=5)
        # The server got them in order: the ack, then the echo of the second (the client records both).
        client.close()

        def answers():
            return [r for r in live.proxy.records() if r["kind"] == "packet" and r["dir"] == "s2c"
                    and (r["type"] == "ACK" or r.get("event") == "message-back")]
        live.settled()
        assert [r["type"] for r in answers()] == ["ACK", "EVENT"]


def test_a_held_packet_goes_on_unchanged_after_the_break_timeout(server):
    with Live(server, "--break", "event=message", "--break-timeout", "1") as live:
        client = Client(live.url, "websocket")
        sent = time.monotonic()
        client.sio.emit("message", "late")
        assert wait_until(lambda: client.got("message-back"), timeout=5)
        assert time.monotonic() - sent >= 0.9
        assert client.got("message-back") == [("late",)]
        client.close()
        timeout = [r for r in live.interventions() if r["action"] == "timeout"]
        assert len(timeout) == 1 and timeout[0]["by"] == "proxy" and timeout[0]["held_ms"] >= 900


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_a_msgpack_session(msgpack_server, transport):
    with Live(msgpack_server, "--break", "event=message,dir=c2s") as live:
        client = Client(live.url, transport, serializer="msgpack")
        conn = live.conn()
        assert conn["parser"] == "msgpack"
        status, answer = live.call("POST", f"/api/conns/{conn['conn']}/emit",
                                   {"to": "client", "event": "injected", "args": [{"bin": {"$binary": "AAEC"}}, 2]})
        assert status == 200, answer
        assert wait_until(lambda: client.got("injected"), timeout=5)
        assert client.got("injected") == [({"bin": b"\x00\x01\x02"}, 2)]
        client.sio.emit("message", [1, 2])
        held = live.held()[0]
        assert live.call("POST", f"/api/held/{held['seq']}/release", {"args": [[3, 4]]})[0] == 200
        assert wait_until(lambda: client.got("message-back"), timeout=5)
        assert client.got("message-back") == [([3, 4],)]
        client.close()


def test_the_api_says_what_is_wrong(server):
    with Live(server) as live:
        client = Client(live.url, "websocket")
        conn = live.conn()["conn"]
        assert live.call("GET", "/api") == (200, {"live": True})
        assert live.call("GET", "/api/conns", token=False)[0] == 403
        status, answer = live.call("POST", "/api/conns/c99/emit", {"to": "server", "event": "x"})
        assert (status, answer["code"]) == (404, "unknown_conn")
        status, answer = live.call("POST", f"/api/conns/{conn}/emit", b"{not json")
        assert (status, answer["code"]) == (400, "bad_request")
        status, answer = live.call("POST", f"/api/conns/{conn}/emit", {"to": "server", "nsp": "/admin", "event": "x"})
        assert (status, answer["code"]) == (409, "namespace_not_connected") and "joined: /" in answer["error"]
        status, answer = live.call("POST", f"/api/conns/{conn}/emit", {"to": "server", "event": "disconnect"})
        assert status == 400
        status, answer = live.call("POST", "/api/breakpoints", {"filter": "colour=red"})
        assert (status, answer["code"]) == (400, "bad_filter")
        assert live.call("POST", "/api/held/12345/release")[0] == 404
        assert live.call("DELETE", "/api/breakpoints/b77")[0] == 404
        assert live.call("GET", "/api/emit")[0] == 404
        assert live.call("DELETE", "/api/conns")[0] == 405
        client.close()
        assert wait_until(lambda: live.call("GET", "/api/conns")[1] == [], timeout=5)
        status, answer = live.call("POST", f"/api/conns/{conn}/emit", {"to": "server", "event": "x"})
        assert (status, answer["code"]) == (409, "conn_closed")


def test_a_conn_held_for_90_seconds_keeps_its_heartbeat(server):
    """python-socketio's server pings every 2 s and gives 2 s for the pong: a held message must
    not hold the pongs behind it."""
    with Live(server, "--break", "event=message,dir=c2s", "--break-timeout", "120") as live:
        client = Client(live.url, "websocket")
        client.sio.emit("message", "patience")
        held = live.held()[0]
        time.sleep(90)
        assert client.sio.connected and client.sio.get_sid() == client.sid
        assert live.held()[0]["seq"] == held["seq"]
        assert live.call("POST", f"/api/held/{held['seq']}/release")[0] == 200
        assert wait_until(lambda: client.got("message-back"), timeout=5)
        client.close()
        records = live.settled()
        pongs = [r for r in records if r["kind"] == "engine" and r.get("type") == "pong"]
        assert len(pongs) >= 40, len(pongs)
        assert [r["by"] for r in records if r["kind"] == "close"] == ["client"]


JS_CLIENT = """([url, transports]) => new Promise((resolve, reject) => {
  window.seen = [];
  window.socket = io(url, { transports, auth: { token: 't' }, reconnection: false });
  socket.on('injected', (...args) => seen.push(['injected', ...args]));
  socket.on('message-back', (...args) => seen.push(['message-back', ...args]));
  socket.on('connect', () => resolve(socket.id));
  socket.on('connect_error', (error) => reject(error.message));
})"""


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_the_inspector_emits_and_holds_for_the_official_js_client(server, js_browser, transport):
    """The official socket.io-client in Chromium talks to python-socketio through the proxy; a
    second page, the inspector, is driven by the keyboard and its buttons as a person would."""
    from playwright.sync_api import expect

    with Live(server) as live:
        client = js_browser.new_page()
        client.goto(js_browser.page_url)
        client.evaluate(JS_CLIENT, [live.url, [transport]])
        seen = lambda: client.evaluate("seen")  # noqa: E731
        client.evaluate("socket.emit('message', {seen: 'first'})")
        assert wait_until(lambda: seen() == [["message-back", {"seen": "first"}]], timeout=5), seen()

        page = js_browser.new_page(viewport={"width": 1280, "height": 900})
        problems = []
        page.on("console", lambda message: message.type == "error" and problems.append(message.text))
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(f"{live.base}/?token={live.token}")
        expect(page.locator("#status")).to_have_text("live")
        expect(page.locator("#live")).to_be_visible()
        page.locator("#conn-rows .conn").first.click()
        expect(page.locator("#emit")).to_be_visible()

        # Emit to the client: the event typed, its arguments as JSON.
        page.locator("body").press("e")
        expect(page.locator("#emit-event")).to_be_focused()
        page.locator("#emit-to").select_option("client")
        page.locator("#emit-event").fill("injected")
        page.locator("#emit-args").fill('[{"from": "the inspector", "n": 12345678901234567890}]')
        page.locator("#emit button[type=submit]").click()
        expect(page.locator("#emit-result")).to_contain_text("sent (#")
        assert wait_until(lambda: any(event[0] == "injected" for event in seen()), timeout=5), seen()
        assert [event for event in seen() if event[0] == "injected"][0][1]["from"] == "the inspector"

        # Emit to the server with an ack: the event chosen from what the conn has seen fills in
        # its last arguments; the ack's answer is shown, exact.
        page.locator("#emit-to").select_option("server")
        page.locator("#emit-event").fill("message")
        page.locator("#emit-event").dispatch_event("change")
        expect(page.locator("#emit-args")).to_have_value('[{"seen":"first"}]')
        page.locator("#emit-event").fill("message-with-ack")
        page.locator("#emit-args").fill("[9007199254740993]")
        page.locator("#emit-ack").check()
        page.locator("#emit-args").press("Control+Enter")
        expect(page.locator("#emit-result")).to_have_text("ack: [9007199254740993]")
        page.locator("#emit-ack").uncheck()

        # Break on the message event (b on its record), then hold, edit and release one.
        page.locator(".row .what", has_text="message").first.click()
        page.locator("body").press("b")
        expect(page.locator("#breakpoints")).to_contain_text("event=message,dir=c2s")
        expect(page.locator("#detail .break-toggle")).to_have_text("Stop breaking on this event (b)")
        client.evaluate("socket.emit('message', {seen: 'second'})")
        held = page.locator("#held .held-item")
        expect(held).to_have_count(1)
        expect(held).to_contain_text('{"seen":"second"}')
        held.get_by_role("button", name="Edit").click()
        page.locator("#held textarea").fill('{"not": "an array"}')
        held.get_by_role("button", name="Release edited").click()
        expect(held).to_contain_text("the arguments must be a JSON array")
        page.locator("#held textarea").fill('[{"seen": "edited"}]')
        page.locator("#held textarea").press("Control+Enter")
        expect(page.locator("#held .held-item")).to_have_count(0)
        assert wait_until(lambda: ["message-back", {"seen": "edited"}] in seen(), timeout=5), seen()

        # Another, dropped with d: it never comes back.
        client.evaluate("socket.emit('message', {seen: 'third'})")
        expect(page.locator("#held .held-item")).to_have_count(1)
        page.locator("body").press("d")
        expect(page.locator("#held .held-item")).to_have_count(0)
        # The breakpoint toggled off (b again), the conn goes on; one set from the list's side goes too.
        page.locator("body").press("b")
        expect(page.locator("#breakpoints")).not_to_contain_text("event=message")
        expect(page.locator("#detail .break-toggle")).to_have_text("Break on this event (b)")
        live.call("POST", "/api/breakpoints", {"filter": "event=nothing"})
        expect(page.locator("#breakpoints")).to_contain_text("event=nothing")
        page.locator("#breakpoints button").click()
        expect(page.locator("#breakpoints")).not_to_contain_text("event=nothing")
        client.evaluate("socket.emit('message', {seen: 'fourth'})")
        assert wait_until(lambda: ["message-back", {"seen": "fourth"}] in seen(), timeout=5), seen()
        assert ["message-back", {"seen": "third"}] not in seen()
        expect(page.locator(".row .what", has_text="✋ drop by ui")).to_have_count(1)
        client.evaluate("socket.disconnect()")
        client.close()
        assert problems == []
        actions = [(r["action"], r["by"]) for r in live.interventions()]
        assert actions == [("emit", "ui"), ("emit", "ui"), ("answer", "proxy"), ("hold", "ui"), ("edit", "ui"), ("hold", "ui"), ("drop", "ui")], actions


def test_break_needs_the_inspector_and_a_filter_it_can_read():
    import subprocess

    from conftest import SIOTAP
    alone = subprocess.run([SIOTAP, "proxy", "--break", "event=chat"], capture_output=True, text=True, timeout=20)
    assert alone.returncode == 2 and "--break needs --ui" in alone.stderr
    wrong = subprocess.run([SIOTAP, "proxy", "--ui", "--break", "colour=red"], capture_output=True, text=True, timeout=20)
    assert wrong.returncode == 2 and "--break colour=red: unknown key colour" in wrong.stderr
    never = subprocess.run([SIOTAP, "proxy", "--ui", "--break", "event=x", "--break-timeout", "0"], capture_output=True, text=True, timeout=20)
    assert never.returncode == 2 and "--break-timeout" in never.stderr
    assert "--break-timeout" in subprocess.run([SIOTAP, "proxy", "--help"], capture_output=True, text=True, timeout=20).stdout


EIO3_CLIENT = """
import json, sys, time
import socketio
events = []
client = socketio.Client(reconnection=False)
client.on("injected", lambda *args: events.append(["injected", list(args)]))
client.on("message-back", lambda *args: events.append(["message-back", list(args)]))
client.connect(sys.argv[1], transports=sys.argv[2].split(","))
print("connected", client.transport(), flush=True)
sys.stdin.readline()                      # the test has emitted and set its breakpoint
client.emit("message", {"text": "original"})
sys.stdin.readline()                      # the test has released it edited
time.sleep(0.5)
client.disconnect()
print(json.dumps(events), flush=True)
"""


@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_protocol_v4_over_engine_io_3(transports):
    """python-socketio 4.x on both ends (Socket.IO v4, Engine.IO 3): the packets are framed for
    that generation (text payloads with lengths, no CONNECT payload)."""
    import subprocess

    from conftest import PY4
    server = python_server("conformance", generation=4)
    try:
        with Live(server) as live:
            client = subprocess.Popen([PY4, "-c", EIO3_CLIENT, live.url, transports], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
            try:
                assert client.stdout.readline().split() == ["connected", transports], client.stderr.read()
                conn = live.conn()
                assert conn["eio"] == 3
                status, answer = live.call("POST", f"/api/conns/{conn['conn']}/emit", {"to": "client", "event": "injected", "args": ["v4", 1]})
                assert status == 200, answer
                status, answer = live.call("POST", f"/api/conns/{conn['conn']}/emit",
                                           {"to": "server", "event": "message-with-ack", "args": [{"v": 4}], "ack": True})
                assert status == 200 and answer["ack"] == [{"v": 4}], answer
                assert live.call("POST", "/api/breakpoints", {"filter": "event=message,dir=c2s"})[0] == 201
                client.stdin.write("go\n")
                client.stdin.flush()
                held = live.held()[0]
                assert live.call("POST", f"/api/held/{held['seq']}/release", {"args": [{"text": "edited"}]})[0] == 200
                client.stdin.write("go\n")
                client.stdin.flush()
                events = json.loads(client.stdout.readline())
            finally:
                client.kill()
            assert ["injected", ["v4", 1]] in events
            assert ["message-back", [{"text": "edited"}]] in events, events
    finally:
        server.stop()
