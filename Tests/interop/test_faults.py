"""Faults around `siotap proxy`, each bounded in count and time: peers that die mid-stream or
mid-request, a client that sends its header a byte a second, a thousand sessions that come and go,
SIGTERM under load. After each, the proxy still serves, its file descriptors come back to the
baseline, every `conn` in the capture ends with one `close`, and every line of it is whole."""
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import aiohttp
import pytest
import requests
import websocket

from conftest import SIOTAP, Proxy, Server, wait_until

PATH = "/socket.io/"


def upstream(*args):
    # Long pings: a session ends only when a test ends it.
    return Server("--app", "conformance", "--ping-interval", "20000", "--ping-timeout", "20000", *args)


def fds(process):
    return len(os.listdir(f"/proc/{process.pid}/fd"))


def session(proxy, transport="websocket"):
    """One whole session through the proxy: open, connect to /, an echo, close."""
    if transport == "websocket":
        ws = websocket.create_connection(f"ws://{proxy.host}:{proxy.port}{PATH}?EIO=4&transport=websocket", timeout=5)
        assert ws.recv().startswith("0{")
        ws.send("40")
        assert ws.recv().startswith("40")
        assert ws.recv().startswith('42["auth"')
        ws.send('42["message","hi"]')
        assert ws.recv() == '42["message-back","hi"]'
        ws.close()
    else:
        base = f"{proxy.url}{PATH}?EIO=4&transport=polling"
        sid = json.loads(requests.get(base, timeout=5).text[1:])["sid"]
        assert requests.post(f"{base}&sid={sid}", data="40", timeout=5).text == "ok"
        assert requests.get(f"{base}&sid={sid}", timeout=5).text.startswith("40")
        assert requests.post(f"{base}&sid={sid}", data="1", timeout=5).text == "ok"


def baseline(proxy):
    """Descriptors once every kind of exchange has run once (some are opened lazily)."""
    session(proxy, "websocket")
    session(proxy, "polling")
    time.sleep(0.3)
    return fds(proxy.process)


def settle(proxy, before):
    assert wait_until(lambda: fds(proxy.process) <= before, timeout=10), f"{fds(proxy.process)} fds open, {before} before"


def whole_capture(proxy):
    """The capture's records, asserting every line is whole and every conn ends with one close."""
    text = proxy.capture.read_text()
    assert text == "" or text.endswith("\n"), f"the last line is cut: {text[-200:]!r}"
    records = [json.loads(line) for line in text.splitlines()]
    conns = {r["conn"] for r in records if r.get("conn")}
    closes = [r["conn"] for r in records if r["kind"] == "close"]
    assert sorted(closes) == sorted(set(closes)), "a conn was closed twice"
    assert set(closes) == conns, f"conns without a close: {sorted(conns - set(closes))}"
    seqs = [r["seq"] for r in records]
    assert seqs == list(range(1, len(records) + 1))
    return records


def test_upstream_killed_mid_stream(tmp_path):
    server = upstream()
    proxy = Proxy(server.url, tmp_path, "--idle-timeout", "4")
    try:
        before = baseline(proxy)
        # A websocket streaming echoes, and a long-poll waiting at the upstream.
        ws = websocket.create_connection(f"ws://{proxy.host}:{proxy.port}{PATH}?EIO=4&transport=websocket", timeout=5)
        ws.recv()
        ws.send("40")
        ws.recv(), ws.recv()
        base = f"{proxy.url}{PATH}?EIO=4&transport=polling"
        sid = json.loads(requests.get(base, timeout=5).text[1:])["sid"]
        poll = {}
        waiting = threading.Thread(target=lambda: poll.update(response=requests.get(f"{base}&sid={sid}", timeout=10)))
        waiting.start()
        for n in range(50):
            ws.send(f'42["message",{n}]')
        time.sleep(0.2)
        server.process.kill()
        server.process.wait(timeout=5)
        # The websocket ends (an upstream that vanished is a server close), the poll gets a 502.
        ended = time.monotonic()
        with pytest.raises(Exception):
            while time.monotonic() - ended < 5:
                ws.recv()
        waiting.join(timeout=10)
        assert poll["response"].status_code == 502
        ws.close()
        # A new upstream on the same port, and the proxy carries on.
        server = upstream("--listen", f"127.0.0.1:{server.port}")
        session(proxy, "websocket")
        session(proxy, "polling")
        records = wait_until_closed(proxy)
        codes = {r.get("code") for r in records if r["kind"] == "error"}
        assert "proxy.upstream_unreachable" in codes or "proxy.upstream_status" in codes
        settle(proxy, before)
    finally:
        proxy.stop()
        server.stop()


def wait_until_closed(proxy, timeout=10):
    """The capture once every conn in it has its close (the idle sweep may take a few seconds)."""
    def closed():
        records = proxy.records()
        return {r["conn"] for r in records if r["kind"] == "close"} == {r["conn"] for r in records if r.get("conn")}
    assert wait_until(closed, timeout=timeout), "some conns never closed"
    return whole_capture(proxy)


CLIENT = """
import sys, time, websocket
ws = websocket.create_connection(sys.argv[1], timeout=5)
ws.recv(); ws.send("40"); ws.recv()
print("streaming", flush=True)
n = 0
while True:
    ws.send('42["message","%s"]' % ("x" * 1000)); n += 1
"""


def test_client_killed_mid_request(tmp_path):
    server = upstream()
    proxy = Proxy(server.url, tmp_path, "--idle-timeout", "4")
    try:
        before = baseline(proxy)
        # A websocket client killed while it streams.
        client = subprocess.Popen([sys.executable, "-c", CLIENT, f"ws://{proxy.host}:{proxy.port}{PATH}?EIO=4&transport=websocket"],
                                  stdout=subprocess.PIPE, text=True)
        assert client.stdout.readline().strip() == "streaming"
        time.sleep(0.3)
        client.kill()
        client.wait()
        # A POST that promises 100 KB and stops after its head and a few bytes.
        sid = json.loads(requests.get(f"{proxy.url}{PATH}?EIO=4&transport=polling", timeout=5).text[1:])["sid"]
        raw = socket.create_connection((proxy.host, int(proxy.port)))
        raw.sendall(f"POST {PATH}?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n40".encode())
        time.sleep(0.2)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
        raw.close()
        # A long-poll whose client vanishes while it waits at the upstream.
        sid2 = json.loads(requests.get(f"{proxy.url}{PATH}?EIO=4&transport=polling", timeout=5).text[1:])["sid"]
        raw = socket.create_connection((proxy.host, int(proxy.port)))
        raw.sendall(f"GET {PATH}?EIO=4&transport=polling&sid={sid2} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        time.sleep(0.2)
        raw.close()
        session(proxy, "websocket")
        records = wait_until_closed(proxy)
        by_client = [r for r in records if r["kind"] == "close" and r["by"] == "client"]
        assert by_client, "the killed websocket client's conn is not closed by the client"
        # Whatever arrived of the killed client's stream is in the capture, packet by packet.
        assert any(r["kind"] == "packet" and r.get("event") == "message" for r in records)
        settle(proxy, before)
    finally:
        proxy.stop()
        server.stop()


def test_slow_header(tmp_path):
    """A client dribbling its request head at a byte a second holds up nobody, and is answered
    correctly when its head is whole."""
    server = upstream()
    proxy = Proxy(server.url, tmp_path)
    try:
        before = baseline(proxy)
        head = f"GET {PATH}?EIO=4&transport=polling HTTP/1.1\r\nHost: {proxy.host}:{proxy.port}\r\n\r\n".encode()
        slow = socket.create_connection((proxy.host, int(proxy.port)), timeout=10)
        abandoned = socket.create_connection((proxy.host, int(proxy.port)), timeout=10)
        slowest = 0.0
        for index in range(6):
            slow.sendall(head[index:index + 1])
            abandoned.sendall(head[index:index + 1])
            started = time.monotonic()
            session(proxy, "websocket" if index % 2 else "polling")
            slowest = max(slowest, time.monotonic() - started)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
        assert slowest < 1.0, f"a session took {slowest:.2f} s next to the slow client"
        abandoned.close()
        slow.sendall(head[6:])
        response = b""
        while b"\r\n\r\n" not in response or not response.rstrip().endswith(b"}"):
            chunk = slow.recv(4096)
            if not chunk:
                break
            response += chunk
        slow.close()
        assert response.startswith(b"HTTP/1.1 200"), response[:200]
        assert b'0{"sid":' in response
        settle(proxy, before)
    finally:
        proxy.stop()
        server.stop()


async def cycles(proxy, count, concurrency=20):
    """`count` whole sessions, websocket and polling alternately, `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)
    base = f"{proxy.url}{PATH}?EIO=4&transport="

    async def one(index, http):
        async with gate:
            if index % 2 == 0:
                async with http.ws_connect(f"ws://{proxy.host}:{proxy.port}{PATH}?EIO=4&transport=websocket") as ws:
                    assert (await ws.receive_str()).startswith("0{")
                    await ws.send_str("40")
                    assert (await ws.receive_str()).startswith("40")
            else:
                async with http.get(base + "polling") as response:
                    sid = json.loads((await response.text())[1:])["sid"]
                async with http.post(f"{base}polling&sid={sid}", data="40") as response:
                    assert await response.text() == "ok"
                async with http.get(f"{base}polling&sid={sid}") as response:
                    assert (await response.text()).startswith("40")
                async with http.post(f"{base}polling&sid={sid}", data="1") as response:
                    assert await response.text() == "ok"

    connector = aiohttp.TCPConnector(force_close=True, limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as http:
        await asyncio.gather(*(one(index, http) for index in range(count)))


def test_a_thousand_sessions_come_and_go(tmp_path):
    server = upstream()
    proxy = Proxy(server.url, tmp_path)
    try:
        before = baseline(proxy)
        started = time.monotonic()
        asyncio.run(cycles(proxy, 1000))
        assert time.monotonic() - started < 120
        session(proxy, "websocket")
        records = wait_until_closed(proxy)
        sessions = [r for r in records if r["kind"] == "session"]
        assert len(sessions) == 1000 + 3
        settle(proxy, before)
    finally:
        proxy.stop()
        server.stop()


async def flood(proxy, clients, stop):
    async def one(http):
        async with http.ws_connect(f"ws://{proxy.host}:{proxy.port}{PATH}?EIO=4&transport=websocket") as ws:
            await ws.receive_str()
            await ws.send_str("40")
            n = 0
            try:
                while not stop.is_set():
                    await ws.send_str(f'42["message",{n},"{"y" * 200}"]')
                    n += 1
                    if n % 50 == 0:
                        await asyncio.sleep(0)
            except (aiohttp.ClientError, ConnectionError):
                pass

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(one(http) for _ in range(clients)), return_exceptions=True)


def test_sigterm_under_load_leaves_a_whole_capture(tmp_path):
    server = upstream()
    proxy = Proxy(server.url, tmp_path)
    try:
        stop = threading.Event()
        load = threading.Thread(target=lambda: asyncio.run(flood(proxy, 10, stop)))
        load.start()
        assert wait_until(lambda: proxy.capture.stat().st_size > 200_000, timeout=15), "the load never got going"
        proxy.process.send_signal(signal.SIGTERM)
        assert proxy.process.wait(timeout=10) == 0
        stop.set()
        load.join(timeout=10)
        records = whole_capture(proxy)
        assert any(r["kind"] == "close" and r["by"] == "proxy" and r["reason"] == "proxy stopped" for r in records)
        # A stop is how these conns end, not a failure of theirs (#27 Must 6).
        assert [r for r in records if r["kind"] == "error"] == []
    finally:
        if proxy.process.poll() is None:
            proxy.stop()
        server.stop()


def stuck_proxy(server, capture, buffer):
    """`siotap proxy` whose live view (JSONL on stdout) goes to a pipe the test does not read yet."""
    proxy = subprocess.Popen(
        [SIOTAP, "proxy", "--listen", "127.0.0.1:0", "--upstream", server.url, "--record", str(capture), "--json",
         "--capture-buffer", str(buffer)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = proxy.stderr.readline().decode()
    assert "listening on" in line, line
    return proxy, line.split("listening on ")[1].split(",")[0].strip()


def settled(items, quiet=1.0, timeout=20):
    """The length of a list others append to, once it has not grown for `quiet` seconds (None if
    it keeps growing): how far the traffic got before the proxy stopped reading, however loaded
    the machine."""
    deadline = time.monotonic() + timeout
    last, since = len(items), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if len(items) != last:
            last, since = len(items), time.monotonic()
        elif time.monotonic() - since >= quiet:
            return last
    return None


def test_a_stuck_live_view_pauses_reading_never_the_proxy(tmp_path):
    """The live view writes to a pipe nobody reads (a stuck terminal): once --capture-buffer records
    wait, the proxy stops reading from that conn's sockets (the client's sends back up) instead
    of blocking an event loop or growing without bound; other traffic goes on; once the pipe is
    read again every message goes through and is recorded, nothing dropped."""
    server = upstream()
    capture = tmp_path / "capture.jsonl"
    proxy, url = stuck_proxy(server, capture, buffer=50)
    count = 3_000
    echoes = []
    try:
        ws = websocket.create_connection(f"{url.replace('http', 'ws')}{PATH}?EIO=4&transport=websocket", timeout=30)
        assert ws.recv().startswith("0{")
        ws.send("40")

        def send():
            for index in range(count):
                ws.send(f'42["message",{index}]')

        def receive():
            while len(echoes) < count:
                message = ws.recv()
                if message.startswith('42["message-back"'):
                    echoes.append(message)

        threading.Thread(target=send, daemon=True).start()
        threading.Thread(target=receive, daemon=True).start()
        stalled = settled(echoes)
        assert stalled is not None and stalled < count, f"{len(echoes)} echoes: the proxy kept reading behind a stuck capture"
        time.sleep(1)
        assert len(echoes) == stalled, "reading went on behind a stuck capture"
        # The proxy itself is not stuck: plain HTTP goes on.
        started = time.monotonic()
        assert requests.get(f"{url}/elsewhere", timeout=5).status_code == 404
        assert time.monotonic() - started < 2

        live = []
        reader = threading.Thread(target=lambda: live.extend(proxy.stdout), daemon=True)
        reader.start()
        assert wait_until(lambda: len(echoes) == count, timeout=60), f"{len(echoes)} of {count} echoes once unstuck"
        ws.close()
    finally:
        proxy.send_signal(signal.SIGTERM)
        assert proxy.wait(timeout=20) == 0
        server.stop()
    records = [json.loads(line) for line in capture.read_text().splitlines()]
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    sent = [r["args"][0] for r in records if r["kind"] == "packet" and r.get("event") == "message"]
    back = [r["args"][0] for r in records if r["kind"] == "packet" and r.get("event") == "message-back"]
    assert sent == list(range(count)) and back == list(range(count)), "a message was dropped from the capture"
    assert len(live) == len(records), "the live view lost records"


def test_a_stuck_live_view_holds_polling_requests_too(tmp_path):
    """Polling requests wait for a capture that is behind, then all go through, all recorded."""
    server = upstream()
    capture = tmp_path / "capture.jsonl"
    proxy, url = stuck_proxy(server, capture, buffer=20)
    count = 1_500
    posted = []
    try:
        base = f"{url}{PATH}?EIO=4&transport=polling"
        sid = json.loads(requests.get(base, timeout=5).text[1:])["sid"]
        assert requests.post(f"{base}&sid={sid}", data="40", timeout=5).text == "ok"

        def post():
            with requests.Session() as session:
                for index in range(count):
                    assert session.post(f"{base}&sid={sid}", data=f'42["note",{index}]', timeout=30).text == "ok"
                    posted.append(index)

        threading.Thread(target=post, daemon=True).start()
        assert wait_until(lambda: len(posted) > 0, timeout=5)
        stalled = settled(posted)
        assert stalled is not None and stalled < count, f"{len(posted)} posts went through behind a stuck capture"
        time.sleep(1)
        assert len(posted) == stalled, "requests went on behind a stuck capture"
        threading.Thread(target=lambda: proxy.stdout.read(), daemon=True).start()
        assert wait_until(lambda: len(posted) == count, timeout=60), f"{len(posted)} of {count} posts once unstuck"
        requests.post(f"{base}&sid={sid}", data="1", timeout=5)
    finally:
        proxy.send_signal(signal.SIGTERM)
        assert proxy.wait(timeout=20) == 0
        server.stop()
    records = [json.loads(line) for line in capture.read_text().splitlines()]
    notes = [r["args"][0] for r in records if r["kind"] == "packet" and r.get("event") == "note"]
    assert notes == list(range(count)), "a message was dropped from the capture"
