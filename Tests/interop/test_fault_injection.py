"""`siotap proxy --fault`, against clients siotap did not write: python-socketio's asyncio client
(reconnection on) over websocket, polling and the upgrade, through the proxy to the built-in
server's conformance app. Each test checks what the client lived through (a reconnection, a
timeout, a late or rewritten event, a capped rate) and what the capture says (the fault records,
the conns)."""
import asyncio
import concurrent.futures
import json
import re
import subprocess
import tempfile
import time

import pytest
import socketio

from conftest import ROOT, SECRET, SIOTAP, Proxy, Server, wait_until
from test_chat_interop import token

TRANSPORTS = {"websocket": ["websocket"], "polling": ["polling"], "upgrade": ["polling", "websocket"]}


@pytest.fixture(scope="module")
def upstream():
    # Heartbeats slow enough that a session only ends when a test ends it.
    server = Server("--app", "conformance", "--ping-interval", "5000", "--ping-timeout", "5000")
    yield server
    server.stop()


class Faulty:
    """A proxy with fault rules, recording to a temporary directory."""

    def __init__(self, upstream, *rules, seed=None, extra=()):
        self.directory = tempfile.TemporaryDirectory(prefix="siotap-faults-")
        args = [arg for rule in rules for arg in ("--fault", rule)] + list(extra)
        if seed is not None:
            args += ["--seed", str(seed)]
        self.proxy = Proxy(upstream.url, self.directory.name, *args)
        self.url = self.proxy.url

    def records(self):
        return self.proxy.records()

    def settled(self):
        """The records once every conn has its close (the capture is written after the traffic)."""
        def closed():
            records = self.records()
            conns = {r["conn"] for r in records if r["kind"] == "session"}
            return conns and conns <= {r["conn"] for r in records if r["kind"] == "close"}
        assert wait_until(closed, timeout=10), self.records()
        return self.records()

    def faults(self):
        return [r for r in self.records() if r["kind"] == "fault"]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proxy.stop()
        self.directory.cleanup()


async def connected_client(url, transports, **options):
    client = socketio.AsyncClient(reconnection_delay=0.1, reconnection_delay_max=0.2, **options)
    await client.connect(url, transports=transports, wait_timeout=5)
    if transports[-1] == "websocket" and len(transports) > 1:
        deadline = time.monotonic() + 5
        while client.transport() != "websocket" and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    assert client.transport() == transports[-1]
    return client


async def disconnect(client):
    """python-engineio's polling client drops its queued DISCONNECT and close packets when it is
    told to disconnect while a POST is still out (its write loop ends on the state, not the queue):
    the session then ends only when its server times it out. Its last POST is let finish first."""
    await asyncio.sleep(0.2)
    await client.disconnect()


def run(coroutine, timeout=30):
    # On a thread of its own: Playwright's sync API keeps an event loop on this one while the
    # browser fixture lives.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, asyncio.wait_for(coroutine, timeout)).result()


def packets(records, **where):
    return [r for r in records if r["kind"] == "packet" and all(r.get(k) == v for k, v in where.items())]


@pytest.mark.parametrize("transport", ["websocket", "polling", "upgrade"])
def test_a_disconnect_makes_the_client_reconnect(upstream, transport):
    with Faulty(upstream, "disconnect,event=cut-here") as proxy:
        async def story():
            client = await connected_client(proxy.url, TRANSPORTS[transport])
            reconnected = asyncio.Event()
            connects = []

            @client.event
            async def connect():
                connects.append(client.sid)
                reconnected.set()

            echoes = []
            client.on("message-back", lambda *args: echoes.append(args))
            first_sid = client.get_sid()
            await client.emit("message", "before")
            deadline = time.monotonic() + 5
            while not echoes and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            await client.emit("cut-here")
            await asyncio.wait_for(reconnected.wait(), 10)
            await client.emit("message", "after")
            deadline = time.monotonic() + 5
            while len(echoes) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            await disconnect(client)
            return first_sid, connects, echoes

        first_sid, connects, echoes = run(story())
        assert echoes == [("before",), ("after",)]
        assert len(connects) == 1 and connects[0] != first_sid
        records = proxy.settled()
        sessions = [r for r in records if r["kind"] == "session"]
        assert len(sessions) >= 2, "the reconnection is a conn of its own"
        [fault] = proxy.faults()
        cut = packets(records, event="cut-here")[0]
        assert fault["action"] == "disconnect" and fault["packet"] == cut["seq"] and fault["conn"] == cut["conn"]
        [first_close] = [r for r in records if r["kind"] == "close" and r["conn"] == cut["conn"]]
        assert first_close["by"] == "proxy", first_close
        assert "after" in [p["args"][0] for p in packets(records, event="message") if p["conn"] != cut["conn"]]


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_a_timed_reset_makes_the_client_reconnect(upstream, transport):
    with Faulty(upstream, "disconnect=1s,how=reset,conn=c1") as proxy:
        async def story():
            client = await connected_client(proxy.url, TRANSPORTS[transport])
            lost = asyncio.Event()
            back = asyncio.Event()
            client.on("disconnect", lambda *args: lost.set())
            client.on("connect", lambda: back.set())
            await asyncio.wait_for(lost.wait(), 10)
            await asyncio.wait_for(back.wait(), 10)
            ack = await client.call("message-with-ack", "alive", timeout=5)
            await disconnect(client)
            return ack

        assert run(story()) == "alive"
        proxy.settled()
        [fault] = proxy.faults()
        assert fault["action"] == "disconnect" and fault["conn"] == "c1" and "reset" in fault["detail"]
        assert wait_until(lambda: any(r["kind"] == "close" and r["conn"] == "c1" for r in proxy.records()))
        [close] = [r for r in proxy.records() if r["kind"] == "close" and r["conn"] == "c1"]
        assert close["by"] == "proxy"


@pytest.mark.parametrize("transport", ["websocket", "polling", "upgrade"])
def test_a_dropped_ack_makes_the_clients_timeout_fire(upstream, transport):
    with Faulty(upstream, "drop,type=ACK,dir=s2c,p=100") as proxy:
        async def story():
            client = await connected_client(proxy.url, TRANSPORTS[transport], reconnection=False)
            started = time.monotonic()
            with pytest.raises(socketio.exceptions.TimeoutError):
                await client.call("message-with-ack", "lost", timeout=1)
            waited = time.monotonic() - started
            # The conn goes on: an event still comes back.
            echoed = asyncio.Event()
            client.on("message-back", lambda *args: echoed.set())
            await client.emit("message", "still here")
            await asyncio.wait_for(echoed.wait(), 5)
            await disconnect(client)
            return waited

        assert run(story()) >= 0.9
        records = proxy.settled()
        [ack] = packets(records, type="ACK", dir="s2c")
        [fault] = proxy.faults()
        assert fault["action"] == "drop" and fault["packet"] == ack["seq"] and fault["rule"] == "drop,type=ACK,dir=s2c,p=100"


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_a_delay_shows_in_the_measured_round_trip(upstream, transport):
    with Faulty(upstream, "delay=400ms,type=ACK,dir=s2c") as proxy:
        async def story():
            client = await connected_client(proxy.url, TRANSPORTS[transport], reconnection=False)
            await client.call("message-with-ack", "warm", timeout=5)
            started = time.monotonic()
            await client.call("message-with-ack", "timed", timeout=5)
            took = time.monotonic() - started
            await disconnect(client)
            return took

        took = run(story())
        assert 0.4 <= took < 2.0, took
        proxy.settled()
        faults = proxy.faults()
        assert len(faults) == 2 and all(f["action"] == "delay" and f["delay_ms"] == 400 for f in faults)


@pytest.mark.parametrize("transport", ["websocket", "polling", "upgrade"])
def test_a_rewrite_reaches_the_client_and_binary_is_kept(upstream, transport):
    with Faulty(upstream, 'set=args[0].price:0,event=message-back', "unset=args[0].secret,event=message-back") as proxy:
        async def story():
            client = await connected_client(proxy.url, TRANSPORTS[transport], reconnection=False)
            seen = asyncio.Queue()
            client.on("message-back", lambda *args: seen.put_nowait(args))
            await client.emit("message", ({"price": 12.5, "secret": "s", "big": 12345678901234567890}, b"\x00\xff\x10"))
            got = await asyncio.wait_for(seen.get(), 5)
            await disconnect(client)
            return got

        got = run(story())
        assert got == ({"price": 0, "big": 12345678901234567890}, b"\x00\xff\x10")
        records = proxy.settled()
        [sent] = packets(records, event="message-back")
        # The capture keeps what the server sent; the fault records say what the client got.
        assert sent["args"][0]["price"] == 12.5
        rewrites = proxy.faults()
        assert [f["action"] for f in rewrites] == ["rewrite", "rewrite"]
        assert rewrites[-1]["raw"].startswith('51-["message-back",{"price":0,"big":12345678901234567890}')


def test_traffic_no_rule_matches_passes_unchanged(upstream):
    """The same session with and without an unrelated rule: the client sees the same things, and
    the capture's packets are the same text."""
    def session(*rules):
        with Faulty(upstream, *rules) as proxy:
            async def story():
                client = await connected_client(proxy.url, ["polling", "websocket"], reconnection=False)
                seen = asyncio.Queue()
                client.on("message-back", lambda *args: seen.put_nowait(args))
                await client.emit("message", ("text", 1.50, b"\x01\x02"))
                echo = await asyncio.wait_for(seen.get(), 5)
                ack = await client.call("message-with-ack", {"n": 12345678901234567890}, timeout=5)
                await disconnect(client)
                return echo, ack

            result = run(story())
            # The CONNECT answer's sid differs from run to run.
            # Each direction in its order (how the two interleave is timing).
            raws = sorted(((p["dir"], re.sub(r'"sid":"[^"]+"', '"sid":"*"', p["raw"]), p.get("attachments")) for p in packets(proxy.settled())),
                          key=lambda packet: packet[0])
            assert proxy.faults() == []
            return result, raws

    assert session("drop,event=never-sent") == session()


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_a_throttle_caps_the_rate(upstream, transport):
    with Faulty(upstream, "throttle=20kB/s,dir=s2c") as proxy:
        async def story():
            client = await connected_client(proxy.url, TRANSPORTS[transport], reconnection=False)
            seen = asyncio.Queue()
            client.on("message-back", lambda *args: seen.put_nowait(args))
            blob = "x" * 10_000
            started = time.monotonic()
            for _ in range(6):
                await client.emit("message", blob)
            for _ in range(6):
                await asyncio.wait_for(seen.get(), 10)
            took = time.monotonic() - started
            await disconnect(client)
            return took

        took = run(story())
        # 60 kB at 20 kB/s: the first message goes at once, the other five wait about 2.5 s.
        assert 2.2 <= took < 6, took
        proxy.settled()
        assert all(f["action"] == "throttle" for f in proxy.faults()) and len(proxy.faults()) >= 2


# The official JavaScript client (socket.io-client 4.8.1) in headless Chromium. The page comes from
# another port of 127.0.0.1 (test_browser's PageServer), so polling goes through CORS.

def js_page(browser):
    page = browser.new_page()
    page.goto(browser.page_url)
    return page


@pytest.fixture(scope="module")
def cors_upstream():
    server = Server("--app", "conformance", "--ping-interval", "5000", "--ping-timeout", "5000", "--cors", "*")
    yield server
    server.stop()


@pytest.mark.parametrize("transport", ["websocket", "polling", "upgrade"])
def test_the_js_client_reconnects_after_a_disconnect(cors_upstream, js_browser, transport):
    with Faulty(cors_upstream, "disconnect,event=cut-here") as proxy:
        page = js_page(js_browser)
        result = page.evaluate("""async ([url, transports]) => {
            const socket = io(url, { transports, reconnectionDelay: 100, reconnectionDelayMax: 200 });
            const next = (event) => new Promise((resolve, reject) => {
                const timer = setTimeout(() => reject(new Error("no " + event)), 8000);
                socket.once(event, (...args) => { clearTimeout(timer); resolve(args); });
            });
            await next("connect");
            if (transports.length > 1 && socket.io.engine.transport.name !== "websocket") await new Promise((resolve) => socket.io.engine.once("upgrade", resolve));
            const first = socket.id;
            socket.emit("cut-here");
            const [reason] = await next("disconnect");
            await next("connect");
            const echo = next("message-back");
            socket.emit("message", "after");
            const [text] = await echo;
            const second = socket.id;
            socket.disconnect();
            return { reason, text, changed: first !== second };
        }""", [proxy.url, TRANSPORTS[transport]])
        page.close()
        assert result == {"reason": "transport error" if transport == "polling" else "transport close", "text": "after", "changed": True}
        records = proxy.settled()
        assert len([r for r in records if r["kind"] == "session"]) == 2
        [fault] = proxy.faults()
        assert fault["action"] == "disconnect" and fault["conn"] == "c1"


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_the_js_client_renews_its_token_after_a_refused_connect(js_browser, transport):
    chat = Server("--app", "chat", "--jwt-secret", SECRET, "--cors", "*", "--ping-interval", "5000", "--ping-timeout", "5000")
    try:
        old, fresh = token(7, name="old"), token(7, name="fresh")
        with Faulty(chat, "refuse-connect=1,message=jwt expired") as proxy:
            page = js_page(js_browser)
            result = page.evaluate("""async ([url, transport, tokens]) => {
                let attempt = 0;
                const socket = io(url, { transports: [transport], auth: (cb) => cb({ token: tokens[attempt++] }) });
                const errors = [];
                // A refused CONNECT is not retried by the client: the app renews its token and tries again.
                socket.on("connect_error", (error) => { errors.push(error.message); socket.connect(); });
                await new Promise((resolve, reject) => {
                    socket.once("connect", resolve);
                    setTimeout(() => reject(new Error("never connected: " + errors)), 8000);
                });
                socket.disconnect();
                return { errors, attempts: attempt };
            }""", [proxy.url, transport, [old, fresh]])
            page.close()
            assert result == {"errors": ["jwt expired"], "attempts": 2}
            records = proxy.settled()
            connects = packets(records, type="CONNECT", dir="c2s")
            assert [c["data"]["token"] for c in connects] == [old, fresh]
            [fault] = proxy.faults()
            assert fault["action"] == "refuse-connect" and fault["packet"] == connects[0]["seq"]
            assert fault["raw"] == '4{"message":"jwt expired"}'
            # Only the renewed CONNECT reached the server, which answered it.
            assert len(packets(records, type="CONNECT", dir="s2c")) == 1
            assert packets(records, type="CONNECT_ERROR") == []
    finally:
        chat.stop()


def test_replay_and_mock_play_the_recorded_faults_again(upstream, tmp_path):
    """A session where the client's event never reached the server and the server's ack never
    reached the client: replayed against the server, and mocked for a client, with and without
    its faults."""
    capture = tmp_path / "lost.jsonl"
    with Faulty(upstream, "drop,event=message,dir=c2s", "drop,type=ACK,dir=s2c") as proxy:
        async def story():
            client = await connected_client(proxy.url, ["websocket"], reconnection=False)
            await client.emit("message", "never arrives")
            with pytest.raises(socketio.exceptions.TimeoutError):
                await client.call("message-with-ack", "lost", timeout=1)
            await disconnect(client)

        run(story())
        proxy.settled()
        capture.write_text(proxy.proxy.capture.read_text())
    assert [f["action"] for f in map(json.loads, capture.read_text().splitlines()) if f["kind"] == "fault"] == ["drop", "drop"]

    def replay(*args):
        return subprocess.run([SIOTAP, "replay", str(capture), "--app", "conformance", "--json", *args],
                              capture_output=True, text=True, timeout=60)

    # Ignoring the faults, the server gets the event and echoes it: not what was recorded.
    plain = replay()
    assert plain.returncode == 1, plain.stdout + plain.stderr
    assert json.loads(plain.stdout)["connections"][0]["unexpected"][0]["key"].startswith("EVENT / message-back")
    faithful = replay("--with-faults")
    assert faithful.returncode == 0, faithful.stdout + faithful.stderr

    def ack_through_mock(*args):
        mock = subprocess.Popen([SIOTAP, "mock", str(capture), "--listen", "127.0.0.1:0", *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            url = mock.stdout.readline().split(" on ")[1].split("/socket.io/")[0]

            async def story():
                client = await connected_client(url, ["websocket"], reconnection=False)
                await client.emit("message", "never arrives")
                try:
                    return await client.call("message-with-ack", "lost", timeout=1)
                except socketio.exceptions.TimeoutError:
                    return "timed out"
                finally:
                    await disconnect(client)

            return run(story())
        finally:
            mock.terminate()
            mock.wait(timeout=10)

    assert ack_through_mock() == "lost"
    assert ack_through_mock("--with-faults") == "timed out"


def test_the_inspector_shows_a_fault_with_its_packet(upstream, js_browser):
    from playwright.sync_api import expect
    from test_inspector import inspector_url
    with Faulty(upstream, "drop,type=ACK,dir=s2c", extra=("--ui", "127.0.0.1:0")) as proxy:
        async def story():
            client = await connected_client(proxy.url, ["websocket"], reconnection=False)
            with pytest.raises(socketio.exceptions.TimeoutError):
                await client.call("message-with-ack", "lost", timeout=0.5)
            await disconnect(client)

        run(story())
        proxy.settled()
        page = js_browser.new_page()
        page.goto(inspector_url(proxy.proxy))
        fault = page.locator("#rows .row.fault-row")
        expect(fault).to_contain_text("fault drop")
        expect(fault).to_contain_text("drop,type=ACK,dir=s2c")
        page.locator(".row .what", has_text=re.compile("^ack #")).click()
        detail = page.locator("#detail")
        expect(detail).to_contain_text("fault drop by drop,type=ACK,dir=s2c")
        detail.locator("a", has_text="fault drop").click()
        expect(detail).to_contain_text("on #")
        page.close()
