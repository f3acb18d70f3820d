"""siotap against Socket.IO server stacks it did not write, as people deploy them: python-socketio on
aiohttp, python-socketio's ASGI app under uvicorn (strict HTTP/1.1, the `websockets` library,
Engine.IO mounted on another path), Flask-SocketIO under gunicorn's threaded worker, and nginx in
front of the built-in server. Each serves the conformance contract; each is reached through
`siotap proxy` (websocket, polling, upgrade: the capture holds every packet the client saw), and is
the target of `siotap replay --target` and `siotap bench --target`."""
import asyncio
import json
import pathlib
import subprocess
import time

import pytest
import socketio

from conftest import ROOT, SIOTAP, Gunicorn, Nginx, Proxy, Server, python_server

TRANSPORTS = {"websocket": ["websocket"], "polling": ["polling"], "upgrade": ["polling", "websocket"]}


class Stack:
    """A running stack: where clients reach it and where Engine.IO is mounted."""

    def __init__(self, name, url, path, processes):
        self.name, self.url, self.path, self.processes = name, url, path, processes

    def stop(self):
        for process in self.processes:
            process.stop()


def start(name):
    if name == "aiohttp":
        server = python_server("conformance")
        return Stack(name, server.url, "/socket.io/", [server])
    if name == "uvicorn":
        server = python_server("conformance", stack="uvicorn", path="ws/socket.io")
        return Stack(name, server.url, server.path, [server])
    if name == "flask-gunicorn":
        server = Gunicorn()
        return Stack(name, server.url, "/socket.io/", [server])
    if name == "nginx":
        backend = Server("--app", "conformance", "--ping-interval", "2000", "--ping-timeout", "2000")
        front = Nginx(backend.port)
        return Stack(name, front.url, "/socket.io/", [front, backend])
    raise ValueError(name)


@pytest.fixture(scope="module", params=["aiohttp", "uvicorn", "flask-gunicorn", "nginx"])
def stack(request):
    running = start(request.param)
    yield running
    running.stop()


def session(url, path, transports):
    """The conformance story a client tells: an echo, a binary ack, /custom; returns what it saw."""
    async def story():
        client = socketio.AsyncClient(reconnection=False)
        seen = []

        @client.on("*")
        async def on_root(event, *args):
            seen.append(("/", event, list(args)))

        @client.on("*", namespace="/custom")
        async def on_custom(event, *args):
            seen.append(("/custom", event, list(args)))

        await client.connect(url, transports=transports, socketio_path=path, namespaces=["/", "/custom"],
                             auth={"token": "abc"}, wait_timeout=5)
        assert client.transport() == transports[-1], "the client fell back to polling: the upgrade failed"
        try:
            await client.emit("message", ("hello", 1.5, {"n": [1, 2]}))
            ack = await client.call("message-with-ack", b"\x00\x01\xfe\xff", timeout=5)
            await client.emit("message", "on custom", namespace="/custom")
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and sum(e[1] == "message-back" for e in seen) < 2:
                await asyncio.sleep(0.02)
        finally:
            try:
                await asyncio.wait_for(client.disconnect(), 3)
            except asyncio.TimeoutError:
                await client.eio.disconnect(abort=True)
        return seen, ack

    return asyncio.run(asyncio.wait_for(story(), 30))


def wait_for_close(proxy, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = proxy.records()
        if any(r["kind"] == "close" for r in records):
            return records
        time.sleep(0.05)
    return proxy.records()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_through_the_proxy(stack, transport, tmp_path):
    # No --path: the proxy finds Engine.IO by its query, wherever the stack mounts it.
    proxy = Proxy(stack.url, tmp_path)
    try:
        seen, ack = session(proxy.url, stack.path, TRANSPORTS[transport])
        records = wait_for_close(proxy)
    finally:
        proxy.stop()
    assert ack == b"\x00\x01\xfe\xff"
    assert ("/", "message-back", ["hello", 1.5, {"n": [1, 2]}]) in seen
    assert ("/custom", "message-back", ["on custom"]) in seen

    sessions = [r for r in records if r["kind"] == "session"]
    assert len(sessions) == 1, "one conn per Engine.IO session, across the upgrade"
    assert sessions[0]["path"] == stack.path
    # A polling client may end by dropping its pending long-poll: the capture says so, nothing else.
    assert [r["code"] for r in records if r["kind"] == "error"] == []
    packets = [r for r in records if r["kind"] == "packet"]
    # Every event the client saw is in the capture, decoded, in the same order.
    captured = [(p["nsp"], p["event"], p["args"]) for p in packets if p["dir"] == "s2c" and p.get("event")]
    assert captured == [(nsp, event, json.loads(json.dumps(args))) for nsp, event, args in seen]
    sent = [(p["nsp"], p["event"], p["args"]) for p in packets if p["dir"] == "c2s" and p.get("event")]
    assert sent == [("/", "message", ["hello", 1.5, {"n": [1, 2]}]),
                    ("/", "message-with-ack", [{"$binary": "AAH+/w=="}]),
                    ("/custom", "message", ["on custom"])]
    binary_ack = [p for p in packets if p["type"] == "BINARY_ACK"]
    assert len(binary_ack) == 1 and binary_ack[0]["args"] == [{"$binary": "AAH+/w=="}]
    assert binary_ack[0]["latency_ms"] >= 0
    used = {r["transport"] for r in records if r["kind"] in ("packet", "engine")}
    assert used == ({"polling", "websocket"} if transport == "upgrade" else {TRANSPORTS[transport][0]})
    tail = [(r["kind"], r.get("dir"), r.get("type"), r.get("code"), r.get("reason")) for r in records[-8:]]
    assert [r["kind"] for r in records].count("close") == 1 and records[-1]["kind"] == "close", f"the capture ends: {tail}"


def test_replay_against(stack):
    """A capture of python-socketio's conformance server replays against every stack, the same."""
    target = stack.url + (stack.path if stack.path != "/socket.io/" else "")
    result = subprocess.run([SIOTAP, "replay", str(ROOT / "fixtures" / "conformance-binary.jsonl"), "--target", target,
                             "--json"], capture_output=True, text=True, timeout=60)
    report = json.loads(result.stdout)
    assert result.returncode == 0, json.dumps(report, indent=1) + result.stderr
    assert report["equal"] is True


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_bench_against(stack, transport):
    target = stack.url + (stack.path if stack.path != "/socket.io/" else "")
    result = subprocess.run([SIOTAP, "bench", "--target", target, "--transport", transport, "--clients", "3",
                             "--messages", "30", "--ack", "--json"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["completed"] == figures["expected"] == 90
