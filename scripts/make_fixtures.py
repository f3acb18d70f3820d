"""Makes fixtures/*.jsonl: real python-socketio peers through `siotap proxy`, redacted.

Usage (from the repository, after scripts/setup-peers.sh and `swift build`):
    .venv-peers/bin/python scripts/make_fixtures.py [NAME...]

Each fixture: the Python implementation of the contract (Tests/interop/python_server.py) behind
the proxy, python-socketio clients playing a short scripted session, the capture redacted with
`siotap redact --secret` (signatures gone: replay re-mints them with --jwt-secret).
"""
import asyncio
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "interop"))

from conftest import PY4, SECRET, SIOTAP, Proxy, python_server  # noqa: E402
from test_chat_interop import Peer, token  # noqa: E402


def wait_closed(proxy, count):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and sum(r["kind"] == "close" for r in proxy.records()) < count:
        time.sleep(0.05)


def chat(proxy, transports):
    async def story():
        alice, bob = Peer(), Peer()
        await alice.connect(proxy, transports, auth={"token": token(1, name="alice", rooms=["vip"])})
        await bob.connect(proxy, transports, auth={"token": token(2, name="bob")})
        await alice.client.emit("user connection", 1)
        await bob.wait_for("user connection")
        await alice.client.emit("message", {"message": "héllo 😀", "sender": "alice", "n": 12345678901234567890})
        await alice.wait_for("chat response")
        await bob.wait_for("message")
        await alice.client.emit("joinRoom", "vip")
        await alice.wait_for("roomJoined")
        await bob.client.emit("notify", {"to": 1, "message": "ping"})
        await alice.wait_for("notification")
        await bob.client.emit("user disconnected", "bob")
        await alice.wait_for("user disconnected")
        await alice.close()
        await bob.close()
    asyncio.run(story())
    wait_closed(proxy, 2)


def refused(proxy, transports):
    async def story():
        for auth in (None, {"token": token(7, secret="not-the-secret-not-the-secret!!!")}, {"token": token(8, lifetime=-60)}):
            peer = Peer()
            try:
                await peer.connect(proxy, transports, auth=auth)
            except Exception:
                pass
            await peer.client.eio.disconnect(abort=True)
    asyncio.run(story())
    wait_closed(proxy, 3)


def conformance_binary(proxy, transports):
    async def story():
        peer = Peer(custom=True)
        await peer.connect(proxy, transports, auth={"token": "abc"}, namespaces=["/", "/custom"])
        await peer.wait_for("auth")
        await peer.client.emit("message", (b"\x01\x02\x03", {"nested": [b"\xff"]}, "text"))
        await peer.wait_for("message-back")
        await peer.client.call("message-with-ack", (b"\x00" * 16, 1.5, None), timeout=5)
        await peer.client.call("message-with-ack", "custom", namespace="/custom", timeout=5)
        await peer.close()
    asyncio.run(story())
    wait_closed(proxy, 1)


def eio3_chat(proxy, transports):
    subprocess.run([PY4, str(ROOT / "Tests" / "interop" / "peers4" / "scenario.py"), "chat", proxy.url, transports, token(4)],
                   capture_output=True, text=True, timeout=60, check=True)
    wait_closed(proxy, 1)


FIXTURES = [
    ("chat-websocket", "chat", 5, chat, ["websocket"]),
    ("chat-polling", "chat", 5, chat, ["polling"]),
    ("chat-upgrade", "chat", 5, chat, ["polling", "websocket"]),
    ("chat-refused-tokens", "chat", 5, refused, ["websocket"]),
    ("conformance-binary", "conformance", 5, conformance_binary, ["websocket"]),
    ("chat-eio3", "chat", 4, eio3_chat, "polling,websocket"),
]


def main():
    out = ROOT / "fixtures"
    only = set(sys.argv[1:])
    for name, app, generation, play, transports in FIXTURES:
        if only and name not in only:
            continue
        server = python_server(app, generation=generation)
        with tempfile.TemporaryDirectory() as directory:
            proxy = Proxy(server.url, directory, "--jwt-secret", SECRET)
            try:
                play(proxy, transports)
            finally:
                proxy.stop()
                server.stop()
            subprocess.run([SIOTAP, "redact", str(proxy.capture), "-o", str(out / f"{name}.jsonl"), "--secret", SECRET],
                           check=True, capture_output=True)
        print(f"fixtures/{name}.jsonl")


if __name__ == "__main__":
    main()
